"""`python -m grucy`: print which BLAS grucy uses, its version, CPU kernel and threads, whose
threads numpy's BLAS runs on, and which copy of grucy's gate passes runs."""
import grucy


def main():
    info = grucy.blas_info()
    print(f"grucy {grucy.__version__}")
    for key in ("package", "library", "corename", "num_threads", "num_procs", "config",
                "numpy_threads", "gate_passes"):
        print(f"  {key:13s} {info[key]}")


if __name__ == "__main__":
    main()
