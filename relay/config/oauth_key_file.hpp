// OAuth key files (`tern serve --oauth-key-file`, `tern token --oauth --oauth-key-file`): the
// AS-RS keys of RFC 7635 §4.1 that tern shares with authorization servers, one per line:
//     KID  BASE64-KEY  [A256GCM|A128GCM]
// fields separated by blanks or tabs; the key is standard base64 (RFC 4648 §4) of 32 bytes
// for A256GCM (the default) or 16 for A128GCM. Blank lines and '#' comments are skipped, CRLF
// trimmed. Keys live only in files, never on the command line or in a printed configuration.
#pragma once

#include <string>
#include <vector>

#include "auth/oauth_token.hpp"
#include "relay/wire/expected.hpp"

namespace tern::config {

// The keys of every file, in order (the first is the one `tern token` mints with), or every
// problem at once, one line each as "FILE:LINE: what", never showing a key: a file that
// cannot be read or holds no key, a line that is not KID BASE64-KEY [AEAD], a key that is not
// strict base64 or not the size its AEAD needs, a kid longer than USERNAME allows, a kid
// given twice (in one file or across files).
Expected<std::vector<auth::OAuthKey>, std::vector<std::string>> readOAuthKeyFiles(
    const std::vector<std::string>& paths);

// The same keys as the immutable store the Authenticator looks tokens up in.
Expected<auth::OAuthKeyStore, std::vector<std::string>> loadOAuthKeyStore(
    const std::vector<std::string>& paths);

}  // namespace tern::config
