fn main() -> std::process::ExitCode {
    pyroscope_relay::cli::main()
}
