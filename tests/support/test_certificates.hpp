// A throwaway certificate authority and a server certificate for 127.0.0.1 (subjectAltName
// IP), made with the openssl command line for TLS tests in a directory removed at exit.
#pragma once

#include <string>

namespace tern::test {

struct TestCertificates {
  std::string dir;
  std::string ca;     // CA certificate (PEM), for clients to verify against
  std::string chain;  // server certificate followed by the CA
  std::string key;    // server private key
};

// Creates them once per test program (they are valid for a day).
const TestCertificates& testCertificates();

// A server certificate for `ip` (subjectAltName IP) from the same CA, for a server that is
// not on 127.0.0.1, e.g. one in a network namespace; made once per IP, in a subdirectory of
// testCertificates().dir. `ca` is the shared CA, so clients trust both alike.
const TestCertificates& testCertificatesFor(const std::string& ip);

}  // namespace tern::test
