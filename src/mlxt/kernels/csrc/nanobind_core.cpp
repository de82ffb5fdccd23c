// nanobind's own library, compiled into the extension (its sources ship with the nanobind
// package, whose src/ directory setup.py puts on the include path).
#include "nb_combined.cpp"
