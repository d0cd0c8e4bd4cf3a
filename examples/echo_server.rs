//! An echo server on flexsc's async API: every accept, read and write is a system call
//! posted to the syscall pages.
//!
//! ```text
//! cargo run --release --example echo_server                  # server + 8 checking clients
//! cargo run --release --example echo_server -- --serve 127.0.0.1:7878   # serve until killed
//! ```
//!
//! Options: `--serve ADDR` serves forever on ADDR; `--clients N` (default 8) and
//! `--messages M` (default 100) set the self-check run, which starts the server on an
//! ephemeral loopback port, runs N concurrent clients that each send M messages of
//! varying sizes, checks every echo byte for byte, and exits 0 only if all match.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use flexsc::net::{TcpListener, TcpStream};

/// Echoes one connection until the peer closes it.
async fn echo(stream: TcpStream) -> std::io::Result<u64> {
    let mut total = 0;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (n, back) = stream.read(buf).await;
        let n = n?;
        if n == 0 {
            return Ok(total);
        }
        let (res, back) = stream.write_all(back).await;
        res?;
        total += n as u64;
        buf = back;
    }
}

async fn serve(listener: Arc<TcpListener>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        flexsc::spawn(async move {
            if let Err(e) = echo(stream).await {
                eprintln!("echo_server: connection: {e}");
            }
        });
    }
}

/// One client: `messages` messages of varying sizes; returns whether every echo matched.
async fn client(addr: SocketAddr, id: usize, messages: usize) -> std::io::Result<bool> {
    let stream = TcpStream::connect(addr).await?;
    for m in 0..messages {
        let len = 1 + (id * 7919 + m * 104_729) % 8192;
        let msg: Vec<u8> = (0..len).map(|i| (i + id + m) as u8).collect();
        let (res, msg) = stream.write_all(msg).await;
        res?;
        let mut got = Vec::with_capacity(len);
        while got.len() < len {
            let (n, buf) = stream.read(Vec::with_capacity(len - got.len())).await;
            if n? == 0 {
                return Ok(false);
            }
            got.extend_from_slice(&buf);
        }
        if got != msg {
            return Ok(false);
        }
    }
    Ok(true)
}

fn parse(args: &[String]) -> Result<(Option<String>, usize, usize), String> {
    let (mut serve_on, mut clients, mut messages) = (None, 8usize, 100usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--serve" => serve_on = Some(value("--serve ADDR")?),
            "--clients" => {
                clients = value("--clients N")?
                    .parse()
                    .map_err(|_| "--clients takes a whole number".to_string())?
            }
            "--messages" => {
                messages = value("--messages M")?
                    .parse()
                    .map_err(|_| "--messages takes a whole number".to_string())?
            }
            other => {
                return Err(format!(
                    "unknown option {other:?}; valid: --serve ADDR | --clients N --messages M"
                ))
            }
        }
    }
    Ok((serve_on, clients, messages))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (serve_on, clients, messages) = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(addr) = serve_on {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                eprintln!("echo_server: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("echo_server: listening on {}", addr);
        return match flexsc::block_on(serve(listener)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo_server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!("echo_server: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    flexsc::spawn(serve(Arc::clone(&listener)));
    let started = std::time::Instant::now();
    let ok = flexsc::block_on(async {
        let handles: Vec<_> = (0..clients)
            .map(|id| flexsc::spawn(client(addr, id, messages)))
            .collect();
        let mut ok = 0;
        for h in handles {
            match h.await {
                Ok(Ok(true)) => ok += 1,
                Ok(Ok(false)) => eprintln!("echo_server: a client got a wrong echo"),
                Ok(Err(e)) => eprintln!("echo_server: a client failed: {e}"),
                Err(_) => eprintln!("echo_server: a client panicked"),
            }
        }
        ok
    });
    println!(
        "echo_server: {ok} of {clients} clients got every one of their {messages} echoes right on {addr} ({:.1} ms)",
        started.elapsed().as_secs_f64() * 1e3
    );
    if ok == clients {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
