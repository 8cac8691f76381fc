#include "core/app/cli.hpp"

int main(int argc, char** argv) { return cutoff::cli_main(argc, argv); }
