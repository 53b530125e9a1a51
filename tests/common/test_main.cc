// main() of every simaccel OpenSSL-level test: gtest plus the process's frontend.
#include "frontend.h"

int main(int argc, char **argv) { return simaccel::test::run_all_tests(argc, argv); }
