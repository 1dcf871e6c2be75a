/* san_defaults.c: the sanitizers' default options, linked into conduitfs and every unit test of
 * a CONDUIT_SANITIZE build, so that a report lands in the build's san/ directory even from a
 * process that lost the ctest environment (env -i, mount(8), a helper) and runs daemonized with
 * stderr on /dev/null. ASAN_OPTIONS and UBSAN_OPTIONS still override them: run a binary by hand
 * with ASAN_OPTIONS=log_path=stderr to see its report on the terminal. The strings come from
 * CMakeLists.txt, which also puts them in every test's environment. */

/* Hooks that the sanitizer runtimes call at start-up (weak there, so this definition wins). */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void)
{
    return CONDUIT_ASAN_OPTIONS;
}

const char *__ubsan_default_options(void)
{
    return CONDUIT_UBSAN_OPTIONS;
}
