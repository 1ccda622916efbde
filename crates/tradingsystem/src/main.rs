//! `tradingsystem`: the one binary of TradingSystem. The commands live in `cli/`.

mod cli;

use clap::Parser;

// mimalloc: the data path allocates on one thread and frees on another (events fanned out to subscribers), where
// glibc's allocator halved the pipeline's throughput (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line: clap's first line names the problem; the usage that follows is what --help is for.
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            let hint = text
                .lines()
                .find(|l| l.contains("possible values"))
                .map(|l| format!(" ({})", l.trim()))
                .unwrap_or_default();
            eprintln!("{first}{hint}; see --help");
            std::process::exit(2);
        }
    };
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}
