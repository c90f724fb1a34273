//! See the README: `eso-recovery --help`.

fn main() -> std::process::ExitCode {
    eso_recovery::app::main()
}
