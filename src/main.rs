fn main() -> std::process::ExitCode {
    kbatch::cli::main()
}
