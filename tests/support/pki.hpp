// TestPki: certificates for TLS tests, made with the `openssl` command in a private
// temporary directory (removed on destruction): a CA the tests trust, server
// certificates (good for 127.0.0.1 and localhost, for another host, expired), client
// certificates (plain, with an encrypted key, from an untrusted CA), a CA directory,
// and junk files. EC P-256 keys, so the whole set takes a few tens of milliseconds.
#pragma once

#include <string>

namespace mqttx::test {

class TestPki {
  public:
    TestPki();  // throws std::runtime_error with openssl's output
    ~TestPki();
    TestPki(const TestPki&) = delete;
    TestPki& operator=(const TestPki&) = delete;

    // One set per test program: made on first use, read-only afterwards.
    static const TestPki& shared();

    static constexpr const char* key_password = "correct horse";

    std::string dir;
    std::string ca_cert, ca_key;
    std::string ca_dir;                           // a directory holding ca_cert
    std::string server_cert, server_key;          // for 127.0.0.1 and localhost
    std::string wrong_host_cert, wrong_host_key;  // for elsewhere.example only
    std::string expired_cert, expired_key;        // for 127.0.0.1, expired yesterday
    std::string client_cert, client_key;          // signed by the CA
    std::string client_key_encrypted;             // client_key under key_password
    std::string other_key;                        // a key matching no certificate
    std::string rogue_ca_cert;                    // a CA nobody trusts
    std::string rogue_client_cert, rogue_client_key;
    std::string not_pem;   // a file of text, no PEM block
    std::string junk_dir;  // a directory whose one file holds no certificate

  private:
    std::string run(const std::string& arguments) const;
    void make_key(const std::string& path) const;
    // A certificate for `key` signed by the CA at `ca`/`ca_key`.
    void sign(const std::string& cert, const std::string& key, const std::string& subject,
              const std::string& san, int days, const std::string& ca,
              const std::string& ca_key) const;
};

}  // namespace mqttx::test
