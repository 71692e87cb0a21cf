package wsroute_test

// fanOutEnv, set to "addr n", makes the test binary the client process of
// BenchmarkFanOut (see TestMain), on the systems that have the benchmark.
const fanOutEnv = "WSROUTE_FANOUT_CLIENT"
