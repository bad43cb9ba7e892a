// moesim: the simulator's command line. Everything lives in RunMoesim; main only turns it into an
// exit status.
#include <iostream>

#include "sim/cli.h"

int main(int argc, char** argv) {
  return moesim::sim::RunMoesim(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                std::cerr);
}
