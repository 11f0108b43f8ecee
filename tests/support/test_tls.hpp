#pragma once

// Test certificates made at run time with OpenSSL's API (nothing on disk, no openssl program):
// a certificate authority and server certificates it signs, as PEM text.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace river::test {

struct openssl_deleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
  void operator()(X509* p) const noexcept { X509_free(p); }
  void operator()(BIO* p) const noexcept { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
};
template <class T>
using openssl_ptr = std::unique_ptr<T, openssl_deleter>;

/// A key and a certificate, as objects and as PEM text.
struct test_identity {
  openssl_ptr<EVP_PKEY> key;
  openssl_ptr<X509> cert;
  std::string key_pem;
  std::string cert_pem;
};

namespace detail {

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  openssl_ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

inline std::string pem_of(X509* cert) {
  openssl_ptr<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  auto n = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, &data);  // BIO_get_mem_data, without its C cast
  return std::string(data, static_cast<std::size_t>(n));
}

inline std::string pem_of(EVP_PKEY* key) {
  openssl_ptr<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  auto n = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, &data);  // BIO_get_mem_data, without its C cast
  return std::string(data, static_cast<std::size_t>(n));
}

// A certificate for `common_name`, signed by `issuer` (itself when null), valid from an hour ago
// for a day.
inline test_identity make_identity(const std::string& common_name, const test_identity* issuer, bool is_ca,
                                   const std::string& subject_alt_names, long serial) {
  test_identity id;
  id.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(id.key != nullptr, "EVP_PKEY_Q_keygen");
  id.cert.reset(X509_new());
  X509* cert = id.cert.get();
  check(X509_set_version(cert, 2) == 1, "X509_set_version");
  check(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial) == 1, "ASN1_INTEGER_set");
  check(X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) != nullptr, "notAfter");
  check(X509_set_pubkey(cert, id.key.get()) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert);
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) == 1,
        "X509_NAME_add_entry_by_txt");
  X509* issuer_cert = issuer ? issuer->cert.get() : cert;
  check(X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert)) == 1, "X509_set_issuer_name");
  if (is_ca) {
    add_extension(cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert, issuer_cert, NID_ext_key_usage, "serverAuth");
    if (!subject_alt_names.empty()) add_extension(cert, issuer_cert, NID_subject_alt_name, subject_alt_names.c_str());
  }
  add_extension(cert, issuer_cert, NID_subject_key_identifier, "hash");
  EVP_PKEY* signer = issuer ? issuer->key.get() : id.key.get();
  check(X509_sign(cert, signer, EVP_sha256()) > 0, "X509_sign");
  id.cert_pem = pem_of(cert);
  id.key_pem = pem_of(id.key.get());
  return id;
}

}  // namespace detail

/// A self-signed certificate authority.
inline test_identity make_test_ca(const std::string& name = "River Test CA") {
  return detail::make_identity(name, nullptr, true, {}, 1);
}

/// A server certificate signed by `ca`, for the names in `subject_alt_names`
/// (OpenSSL's syntax: "IP:127.0.0.1,DNS:localhost").
inline test_identity make_test_server(const test_identity& ca,
                                      const std::string& subject_alt_names = "IP:127.0.0.1,DNS:localhost") {
  return detail::make_identity("River test server", &ca, false, subject_alt_names, 2);
}

/// What an application does to trust its own authority: a client context that trusts `ca`.
inline std::shared_ptr<boost::asio::ssl::context> trusting(const test_identity& ca) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->add_certificate_authority(boost::asio::buffer(ca.cert_pem));
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

/// A server certificate that a client must refuse, and the reason OpenSSL gives.
struct unverifiable_server {
  const char* name;
  test_identity server;
  std::shared_ptr<boost::asio::ssl::context> client;  ///< null: the system's trust store
  std::string host;                                   ///< the host name the client connects to
  std::string reason;
};

/// Every way to fail verification that the tests check, for a client that trusts `ca`.
inline std::vector<unverifiable_server> unverifiable_servers(const test_identity& ca) {
  std::vector<unverifiable_server> out;
  out.push_back({"an authority the system does not trust", make_test_server(ca), nullptr, "127.0.0.1",
                 "unable to get local issuer certificate"});
  out.push_back({"an authority the application does not trust", make_test_server(make_test_ca("Another CA")),
                 trusting(ca), "127.0.0.1", "unable to get local issuer certificate"});
  out.push_back({"a certificate for another address", make_test_server(ca, "IP:127.0.0.2,DNS:localhost"), trusting(ca),
                 "127.0.0.1", "IP address mismatch"});
  out.push_back({"a certificate for another name", make_test_server(ca, "DNS:other.example,IP:127.0.0.1"),
                 trusting(ca), "localhost", "hostname mismatch"});
  out.push_back({"a self-signed certificate", make_test_ca("Self"), trusting(ca), "127.0.0.1", "self-signed certificate"});
  return out;
}

}  // namespace river::test
