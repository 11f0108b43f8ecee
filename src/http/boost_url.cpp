// Boost 1.81 ships Boost.URL as headers only: its compiled part lives in this translation unit.
#include <boost/url/src.hpp>
