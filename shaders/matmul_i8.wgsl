// placeholder until the GEMM kernel lands
