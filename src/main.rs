use clap::Parser;

fn main() {
    quiet_on_closed_pipe();
    let cli = incidentd::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(incidentd::cli::run(cli));
    std::process::exit(code);
}

/// A reader that went away (`incidentd incidents show 1 | head`) ends the command quietly with
/// the status a shell gives a process killed by SIGPIPE (128 + 13), as other Unix tools do,
/// instead of a panic from `println!`. Any other panic is reported as before.
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}
