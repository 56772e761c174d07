#include "tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "connect_failure.hpp"

namespace mqttx::detail {
namespace {

namespace fs = std::filesystem;

struct FreeBio {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct FreeX509 {
    void operator()(X509* x) const { X509_free(x); }
};
struct FreeKey {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct FreeCtx {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using Bio = std::unique_ptr<BIO, FreeBio>;
using Certificate = std::unique_ptr<X509, FreeX509>;
using Key = std::unique_ptr<EVP_PKEY, FreeKey>;

// Never prompts on a terminal: an encrypted key without a password just fails to load.
int password_callback(char* buffer, int size, int, void* user) {
    const auto* password = static_cast<const std::string*>(user);
    const int length = static_cast<int>(std::min<std::size_t>(password->size(), size));
    std::memcpy(buffer, password->data(), static_cast<std::size_t>(length));
    return length;
}

bool readable_file(Problems& problems, const std::string& field, const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        problems.add(field, "no such file '" + path + "'");
        return false;
    }
    if (!std::ifstream(path)) {
        problems.add(field, "cannot read file '" + path + "'");
        return false;
    }
    return true;
}

// The PEM certificates in a file, in order (none when it holds none or cannot be read).
std::vector<Certificate> read_certificates(const std::string& path) {
    std::vector<Certificate> certificates;
    Bio bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) return certificates;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        certificates.emplace_back(x);
    }
    ERR_clear_error();  // the read that ends the loop leaves "no start line"
    return certificates;
}

Key read_key(const std::string& path, const std::string& password) {
    Bio bio(BIO_new_file(path.c_str(), "r"));
    Key key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, password_callback,
                                          const_cast<std::string*>(&password))
                : nullptr);
    ERR_clear_error();
    return key;
}

bool looks_encrypted(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str().find("ENCRYPTED") != std::string::npos;
}

std::vector<fs::path> files_in(const std::string& directory) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
        if (entry.is_regular_file(ec)) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

void check_tls(Problems& problems, const TlsConfig& tls) {
    if (!tls.ca_file.empty() && !tls.ca_path.empty()) {
        problems.add("tls.ca_path", "give ca_file or ca_path, not both");
    }
    if (!tls.ca_file.empty() && readable_file(problems, "tls.ca_file", tls.ca_file) &&
        read_certificates(tls.ca_file).empty()) {
        problems.add("tls.ca_file", "'" + tls.ca_file + "' holds no PEM certificate");
    }
    if (!tls.ca_path.empty()) {
        std::error_code ec;
        if (!fs::is_directory(tls.ca_path, ec)) {
            problems.add("tls.ca_path", "no such directory '" + tls.ca_path + "'");
        } else {
            std::size_t count = 0;
            for (const auto& file : files_in(tls.ca_path)) count += read_certificates(file).size();
            if (count == 0) {
                problems.add("tls.ca_path",
                             "no file in '" + tls.ca_path + "' holds a PEM certificate");
            }
        }
    }

    Certificate certificate;
    if (!tls.cert_file.empty() && readable_file(problems, "tls.cert_file", tls.cert_file)) {
        auto certificates = read_certificates(tls.cert_file);
        if (certificates.empty()) {
            problems.add("tls.cert_file", "'" + tls.cert_file + "' is not a PEM certificate");
        } else {
            certificate = std::move(certificates.front());
        }
    }
    Key key;
    if (!tls.key_file.empty() && readable_file(problems, "tls.key_file", tls.key_file)) {
        key = read_key(tls.key_file, tls.key_password);
        if (!key) {
            problems.add("tls.key_file", looks_encrypted(tls.key_file)
                                             ? "cannot decrypt the key in '" + tls.key_file +
                                                   "': key_password is wrong or missing"
                                             : "'" + tls.key_file + "' is not a PEM private key");
        }
    }
    if (certificate && key && X509_check_private_key(certificate.get(), key.get()) != 1) {
        ERR_clear_error();
        problems.add("tls.key_file", "the key in '" + tls.key_file +
                                         "' does not belong to the certificate in '" +
                                         tls.cert_file + "'");
    }
    if (!tls.cert_file.empty() && tls.key_file.empty()) {
        problems.add("tls.key_file", "a client certificate needs its private key");
    }
    if (tls.cert_file.empty() && !tls.key_file.empty()) {
        problems.add("tls.cert_file", "a private key needs its client certificate");
    }
    if (!tls.key_password.empty() && tls.key_file.empty()) {
        problems.add("tls.key_password", "a password needs an encrypted key_file");
    }

    if (!tls.ciphers.empty()) {
        if (tls.ciphers.find("SECLEVEL=0") != std::string::npos) {
            problems.add("tls.ciphers", "security level 0 would allow TLS below 1.2");
        } else {
            std::unique_ptr<SSL_CTX, FreeCtx> ctx(SSL_CTX_new(TLS_client_method()));
            if (!ctx || SSL_CTX_set_cipher_list(ctx.get(), tls.ciphers.c_str()) != 1) {
                problems.add("tls.ciphers", "OpenSSL accepts none of '" + tls.ciphers + "'");
            }
            ERR_clear_error();
        }
    }
    if (tls.min_version != TlsVersion::v1_2) {
        // Paho C 1.3.12 builds its SSL_CTX from TLS_client_method() and ignores
        // sslVersion, and a TLS 1.2 cipher list that selects nothing makes it fail.
        problems.add("tls.min_version",
                     "only TLS 1.2 can be required through Paho C 1.3.12; have the broker "
                     "require TLS 1.3 (mosquitto: tls_version tlsv1.3)");
    }
    for (const auto& protocol : tls.alpn) {
        if (protocol.empty() || protocol.size() > 255) {
            problems.add("tls.alpn", "each protocol name must be 1 to 255 bytes");
            break;
        }
    }
}

CaBundle::CaBundle(const std::string& directory) {
    std::string pem;
    for (const auto& file : files_in(directory)) {
        for (const auto& certificate : read_certificates(file.string())) {
            Bio out(BIO_new(BIO_s_mem()));
            if (!out || PEM_write_bio_X509(out.get(), certificate.get()) != 1) continue;
            char* data = nullptr;
            const long size = BIO_get_mem_data(out.get(), &data);
            pem.append(data, static_cast<std::size_t>(size));
        }
    }
    if (pem.empty()) {
        throw Error(ErrorKind::tls, "the CA directory holds no PEM certificate")
            .with_context("ca_path", directory);
    }
    std::string dir_template = (fs::temp_directory_path() / "mqttx-ca-XXXXXX").string();
    if (!::mkdtemp(dir_template.data())) {
        throw Error(ErrorKind::tls, "cannot make a directory for the CA bundle")
            .with_context("ca_path", directory);
    }
    dir_ = dir_template;
    path_ = dir_ + "/ca-bundle.pem";
    std::ofstream out(path_, std::ios::binary);
    out << pem;
    out.close();
    if (!out) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        throw Error(ErrorKind::tls, "cannot write the CA bundle")
            .with_context("ca_path", directory)
            .with_context("file", path_);
    }
}

CaBundle::~CaBundle() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

namespace {

struct FreeSsl {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// A TCP connection within `timeout` (see connect_tcp), blocking with send and receive
// timeouts; -1 when there is none.
int connect_with_timeout(const std::string& host, int port, std::chrono::milliseconds timeout) {
    TcpProbe probe;
    const int fd = connect_tcp(host, port, timeout, probe);
    if (fd < 0) return -1;
    const auto ms = static_cast<int>(timeout.count());
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

std::string last_openssl_error() {
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    const char* reason = code ? ERR_reason_error_string(code) : nullptr;
    return reason ? reason : "";
}

}  // namespace

std::string diagnose_tls_failure(const std::string& host, int port, const TlsConfig& tls,
                                 const std::string& trust_file, std::chrono::milliseconds timeout) {
    const int fd = connect_with_timeout(host, port, timeout);
    if (fd < 0) return {};  // not a TLS problem: nothing listens, or it is unreachable
    std::unique_ptr<SSL_CTX, FreeCtx> ctx(SSL_CTX_new(TLS_client_method()));
    std::unique_ptr<SSL, FreeSsl> ssl(ctx ? SSL_new(ctx.get()) : nullptr);
    if (!ssl) {
        ::close(fd);
        return {};
    }
    if (!tls.skip_verify) {
        SSL_set_verify(ssl.get(), SSL_VERIFY_PEER, nullptr);
        if (trust_file.empty()) {
            SSL_CTX_set_default_verify_paths(ctx.get());
        } else {
            SSL_CTX_load_verify_locations(ctx.get(), trust_file.c_str(), nullptr);
        }
        in6_addr address;
        const bool ip = ::inet_pton(AF_INET, host.c_str(), &address) == 1 ||
                        ::inet_pton(AF_INET6, host.c_str(), &address) == 1;
        auto* param = SSL_get0_param(ssl.get());
        if (ip) {
            X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
        } else {
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
        }
    }
    // build() checked these files and settings; a failure here leaves the setting out,
    // and the handshake then shows what that changes.
    if (!tls.cert_file.empty() &&
        SSL_use_certificate_chain_file(ssl.get(), tls.cert_file.c_str()) == 1) {
        if (auto key = read_key(tls.key_file, tls.key_password)) {
            SSL_use_PrivateKey(ssl.get(), key.get());
        }
    }
    if (!tls.ciphers.empty()) SSL_set_cipher_list(ssl.get(), tls.ciphers.c_str());
    if (!tls.alpn.empty()) {
        std::string wire;  // ALPN's wire form: each name preceded by its length
        for (const auto& protocol : tls.alpn) {
            wire += static_cast<char>(protocol.size());
            wire += protocol;
        }
        SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
    }
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    SSL_set_fd(ssl.get(), fd);
    ERR_clear_error();
    std::string reason;
    if (SSL_connect(ssl.get()) != 1) {
        // Without verification OpenSSL still records a verify result; it is not the reason.
        const long verify = tls.skip_verify ? X509_V_OK : SSL_get_verify_result(ssl.get());
        reason = verify != X509_V_OK ? std::string("certificate verify failed: ") +
                                           X509_verify_cert_error_string(verify)
                                     : last_openssl_error();
        if (reason.empty()) reason = "the connection closed during the TLS handshake";
    } else {
        // Under TLS 1.3 the broker judges our certificate after the handshake: its alert
        // is the first thing to read. A broker content with us sends nothing; the read
        // then times out.
        timeval tv{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char byte;
        if (SSL_read(ssl.get(), &byte, 1) <= 0) reason = last_openssl_error();
    }
    ssl.reset();
    ::close(fd);
    return reason;
}

ErrorKind tls_failure_kind(std::string_view reason) {
    for (const char* refusal : {"certificate", "unknown ca", "hostname mismatch",
                                "IP address mismatch", "email address mismatch"}) {
        if (reason.find(refusal) != std::string_view::npos) return ErrorKind::authentication;
    }
    return ErrorKind::connection;
}

}  // namespace mqttx::detail
