// The C++ wrapper through the same CMake target.
#include <cstdio>
#include <string>

#include <failwell.hpp>

int main() {
    failwell::Breaker db;
    bool ok = db.call([] { return true; });
    if (!ok || std::string(failwell::version()) != FW_VERSION_STRING) {
        return 1;
    }
    std::printf("failwell %s via CMake (C++): ok\n", failwell::version());
    return 0;
}
