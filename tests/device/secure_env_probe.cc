// Applies SIMACCEL_OPTS as the front ends do (Device::apply_env) and prints the real and
// effective user ids and the resolved configuration: run by secure_env.sh as a setuid copy and
// as a plain one.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "simaccel/config.h"
#include "simaccel/device.h"

int main() {
    simaccel::Device dev;
    std::string err;
    if (!dev.apply_env(&err)) {
        std::fprintf(stderr, "%s\n", err.c_str());
        return 2;
    }
    std::printf("uid=%u euid=%u\n%s\n", static_cast<unsigned>(getuid()),
                static_cast<unsigned>(geteuid()), simaccel::config_to_json(dev.config()).c_str());
    return 0;
}
