// The owners of OpenSSL objects (simaccel/ossl_ptr.h, shared with the engine) in the tests'
// namespace: every test frees what it makes, so that the ASan/LSan runs point at leaks in
// simaccel and not in the tests. And the error queue as text, for failure messages.
#pragma once

#include <string>

#include "simaccel/ossl_ptr.h"

namespace simaccel::test {

// `using namespace simaccel::test` brings the owners along.
using namespace simaccel;

// Returns every error on the thread's queue as one line, and empties the queue: for failure
// messages.
std::string drain_errors();

} // namespace simaccel::test
