"""Developer tools: offline render, benchmarks, toolchain."""
