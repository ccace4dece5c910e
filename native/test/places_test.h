// The places book's core tests (places_test.cc), registered by core_test.cc's main.
#pragma once

namespace tollgate_test {

using TestRunner = void (*)(const char* name, void (*test)());

// Tests on one thread (forks among them: not under ThreadSanitizer).
void run_places_tests(TestRunner run);
// Threads sharing one book (run under ThreadSanitizer too).
void run_places_thread_tests(TestRunner run);

}  // namespace tollgate_test
