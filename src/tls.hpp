// TLS helpers around Paho's ssl_options: checking a TlsConfig's files with OpenSSL at
// build(), a CA directory turned into one trust store file, and the kind of a
// handshake failure from OpenSSL's reason.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "mqttx/error.hpp"
#include "mqttx/options.hpp"
#include "problems.hpp"

namespace mqttx::detail {

// One problem per setting that cannot work, under its field name and naming the file:
// missing or unreadable files, a CA file or directory with no certificate, a
// certificate or key that does not parse (or a key that needs another password), a key
// that does not match its certificate, a cipher list OpenSSL refuses or that would
// allow TLS below 1.2, a minimum version Paho cannot set, an ALPN name out of range.
void check_tls(Problems& problems, const TlsConfig& tls);

// The certificates of every file in a CA directory, as one PEM file in a private
// temporary directory (removed on destruction). Paho C++ 1.2.0 loses ca_path when its
// ssl_options are copied, so a directory is handed to Paho as a trust store file.
class CaBundle {
  public:
    // Throws Error (tls) naming the directory when it holds no certificate.
    explicit CaBundle(const std::string& directory);
    ~CaBundle();
    CaBundle(const CaBundle&) = delete;
    CaBundle& operator=(const CaBundle&) = delete;
    const std::string& path() const noexcept { return path_; }

  private:
    std::string dir_;
    std::string path_;
};

// Why a TLS connection to host:port fails, found by a handshake of our own with the same
// settings, because Paho reports only "Failure": it checks the host name itself after
// the handshake, a broker that refuses our certificate under TLS 1.3 says so in an
// alert after the handshake, and Paho's SSL error callback cannot be used (see
// SessionCore::make_connect_options). Returns OpenSSL's
// verify result ("hostname mismatch", "certificate has expired", ...), its error
// ("unexpected eof while reading"), or the broker's alert ("tlsv13 alert certificate
// required"); empty when the broker cannot be reached or the handshake works. Blocks
// for up to about twice `timeout`.
std::string diagnose_tls_failure(const std::string& host, int port, const TlsConfig& tls,
                                 const std::string& trust_file, std::chrono::milliseconds timeout);

// authentication when a certificate was refused (ours or the broker's: verify failed,
// unknown CA, expired, host name mismatch, certificate required), connection otherwise
// (a plaintext port, no shared protocol version or cipher).
ErrorKind tls_failure_kind(std::string_view openssl_reason);

}  // namespace mqttx::detail
