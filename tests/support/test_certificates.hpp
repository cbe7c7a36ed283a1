// A throwaway certificate authority and a server certificate for 127.0.0.1 (subjectAltName
// IP), made with the openssl command line for TLS tests; removed with the directory.
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

}  // namespace tern::test
