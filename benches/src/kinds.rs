//! The kinds of connection that the stream and ping-pong measures run
//! over ([`Kind`], [`KINDS`]), and how a connected pair of each is made.

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::args::{KIB, MIB};

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
    let (c, s) = (c.unwrap(), s.unwrap().0);
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

async fn pipenet_pair(net: &pipenet::Network) -> (virtnet_core::Conn, virtnet_core::Conn) {
    let a = net.new_host("α").await.unwrap();
    let b = net.new_host("β").await.unwrap();
    let l = a.listen("").await.unwrap();
    let addr = l.local_addr().to_string();
    tokio::try_join!(b.dial(&addr), l.accept()).unwrap()
}

async fn lonet_pair(net: &virtnet_core::SubNetwork) -> (virtnet_core::Conn, virtnet_core::Conn) {
    let a = match net.host("α") {
        Some(h) => h,
        None => net.new_host("α").await.unwrap(),
    };
    let b = match net.host("β") {
        Some(h) => h,
        None => net.new_host("β").await.unwrap(),
    };
    let l = a.listen("").await.unwrap();
    let addr = l.local_addr().to_string();
    tokio::try_join!(b.dial(&addr), l.accept()).unwrap()
}

/// The kinds of connection measured for throughput and ping-pong.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Raw TCP on 127.0.0.1.
    Tcp,
    /// `tokio::io::duplex` with this capacity.
    Duplex(usize),
    /// pipenet with its default settings.
    Pipenet,
    /// pipenet with another pipe capacity (for comparison).
    PipenetCap(usize),
    /// lonet, both hosts in this process.
    Lonet,
}

impl Kind {
    /// The report's name for it.
    pub fn name(self) -> String {
        match self {
            Kind::Tcp => "raw TCP 127.0.0.1".into(),
            Kind::Duplex(c) => format!("tokio::io::duplex {} KiB", c / KIB),
            Kind::Pipenet => "pipenet (default settings)".into(),
            Kind::PipenetCap(c) => format!("pipenet, {} KiB pipe capacity", c / KIB),
            Kind::Lonet => "lonet".into(),
        }
    }

    /// A short name for criterion: `raw_tcp`, `duplex_64KiB`, …
    pub fn id(self) -> String {
        match self {
            Kind::Tcp => "raw_tcp".into(),
            Kind::Duplex(c) => format!("duplex_{}KiB", c / KIB),
            Kind::Pipenet => "pipenet".into(),
            Kind::PipenetCap(c) => format!("pipenet_{}KiB", c / KIB),
            Kind::Lonet => "lonet".into(),
        }
    }

    /// Runs `f` on a connected pair of this kind.
    pub async fn with_pair<F, Fut, T>(self, root: std::path::PathBuf, f: F) -> T
    where
        F: FnOnce(BoxIo, BoxIo) -> Fut,
        Fut: Future<Output = T>,
    {
        match self {
            Kind::Tcp => {
                let (c, s) = tcp_pair().await;
                f(Box::new(c), Box::new(s)).await
            }
            Kind::Duplex(cap) => {
                let (c, s) = tokio::io::duplex(cap);
                f(Box::new(c), Box::new(s)).await
            }
            Kind::Pipenet | Kind::PipenetCap(_) => {
                let net = match self {
                    Kind::PipenetCap(c) => pipenet::Network::builder("streambench")
                        .pipe_capacity(c)
                        .build(),
                    _ => pipenet::Network::new("streambench"),
                };
                let (c, s) = pipenet_pair(&net).await;
                let out = f(Box::new(c), Box::new(s)).await;
                net.close().await.unwrap();
                out
            }
            Kind::Lonet => {
                let net = lonet::Builder::new("streambench")
                    .root(&root)
                    .join()
                    .await
                    .unwrap();
                let (c, s) = lonet_pair(&net).await;
                let out = f(Box::new(c), Box::new(s)).await;
                net.close().await.unwrap();
                out
            }
        }
    }
}

/// A connection end of any kind.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
/// A boxed connection end.
pub type BoxIo = Box<dyn Io>;

/// Every kind, in report order.
pub const KINDS: [Kind; 7] = [
    Kind::Tcp,
    Kind::Duplex(64 * KIB),
    Kind::Duplex(256 * KIB),
    Kind::Duplex(MIB),
    Kind::Pipenet,
    Kind::PipenetCap(MIB),
    Kind::Lonet,
];
