#include "support/pki.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "support/child_process.hpp"
#include "support/mosquitto.hpp"

namespace mqttx::test {

std::string TestPki::run(const std::string& arguments) const {
    static const std::string openssl = find_executable("openssl", "openssl");
    const auto command = openssl + " " + arguments;
    auto [status, output] = run_command(command);
    if (status != 0) throw std::runtime_error("failed: " + command + "\n" + output);
    return output;
}

void TestPki::make_key(const std::string& path) const {
    run("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + path);
}

void TestPki::sign(const std::string& cert, const std::string& key, const std::string& subject,
                   const std::string& san, int days, const std::string& ca,
                   const std::string& ca_key) const {
    const auto csr = cert + ".csr";
    const auto extensions = cert + ".ext";
    std::ofstream(extensions) << (san.empty() ? "" : "subjectAltName=" + san + "\n")
                              << "basicConstraints=CA:FALSE\n";
    run("req -new -key " + key + " -subj '/CN=" + subject + "' -out " + csr);
    // A negative -days makes a certificate whose validity ended before now.
    run("x509 -req -in " + csr + " -CA " + ca + " -CAkey " + ca_key + " -CAcreateserial -days " +
        std::to_string(days) + " -extfile " + extensions + " -out " + cert);
}

TestPki::TestPki() : dir(make_temp_dir("mqttx-pki-")) {
    const auto path = [this](const char* name) { return dir + "/" + name; };
    ca_cert = path("ca.crt");
    ca_key = path("ca.key");
    make_key(ca_key);
    run("req -x509 -new -key " + ca_key + " -subj '/CN=mqttx test CA' -days 2 -out " + ca_cert);
    ca_dir = path("cas");
    std::filesystem::create_directory(ca_dir);
    std::filesystem::copy_file(ca_cert, ca_dir + "/ca.pem");

    server_key = path("server.key");
    make_key(server_key);
    server_cert = path("server.crt");
    sign(server_cert, server_key, "127.0.0.1", "IP:127.0.0.1,DNS:localhost", 2, ca_cert, ca_key);
    wrong_host_key = path("wrong.key");
    make_key(wrong_host_key);
    wrong_host_cert = path("wrong.crt");
    sign(wrong_host_cert, wrong_host_key, "elsewhere.example", "DNS:elsewhere.example", 2, ca_cert,
         ca_key);
    expired_key = path("expired.key");
    make_key(expired_key);
    expired_cert = path("expired.crt");
    sign(expired_cert, expired_key, "127.0.0.1", "IP:127.0.0.1,DNS:localhost", -1, ca_cert, ca_key);

    client_key = path("client.key");
    make_key(client_key);
    client_cert = path("client.crt");
    sign(client_cert, client_key, "mqttx test client", "", 2, ca_cert, ca_key);
    client_key_encrypted = path("client-encrypted.key");
    run("pkey -in " + client_key + " -aes256 -passout 'pass:" + key_password + "' -out " +
        client_key_encrypted);
    other_key = path("other.key");
    make_key(other_key);

    const auto rogue_ca_key = path("rogue-ca.key");
    make_key(rogue_ca_key);
    rogue_ca_cert = path("rogue-ca.crt");
    run("req -x509 -new -key " + rogue_ca_key + " -subj '/CN=rogue CA' -days 2 -out " +
        rogue_ca_cert);
    rogue_client_key = path("rogue-client.key");
    make_key(rogue_client_key);
    rogue_client_cert = path("rogue-client.crt");
    sign(rogue_client_cert, rogue_client_key, "rogue client", "", 2, rogue_ca_cert, rogue_ca_key);

    not_pem = path("not.pem");
    std::ofstream(not_pem) << "this is not a certificate\n";
    junk_dir = path("junk");
    std::filesystem::create_directory(junk_dir);
    std::filesystem::copy_file(not_pem, junk_dir + "/junk.pem");
}

TestPki::~TestPki() {
    remove_tree(dir);
}

const TestPki& TestPki::shared() {
    static const TestPki pki;
    return pki;
}

}  // namespace mqttx::test
