// main of moesim_tests and moebench_tests: what CATCH_CONFIG_MAIN would define, with Catch2's
// implementation compiled once in catch_impl.cc.
#include "catch_run.h"

int main(int argc, char** argv) { return moesim::testing::RunCatch(argc, argv); }
