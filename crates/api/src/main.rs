fn main() -> std::process::ExitCode {
    clickledger_api::cli::main()
}
