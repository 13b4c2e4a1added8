//! hyper (and tonic) clients over virtnet: [`Connector`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;

use crate::{join_host_port, Conn, Networker};

type Resolve = dyn Fn(&Uri) -> io::Result<String> + Send + Sync;

/// A `tower::Service<Uri>` that dials through a [`Networker`]: hand it to
/// hyper-util's `Client::builder(…).build(connector)` or tonic's
/// `Endpoint::connect_with_connector`.
///
/// # From URI to virtnet address
/// A URI names `host:port`; the port defaults to 80 for `http` and 443 for
/// `https`. URI hosts are ASCII, so a virtnet host such as `α` cannot appear
/// in one: map URI hosts to virtnet hosts with [`alias`](Self::alias), or
/// take over completely with [`with_resolver`](Self::with_resolver).
///
/// ```
/// use std::sync::Arc;
/// use virtnet_core::integrations::Connector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let net = pipenet::Network::new("hyperdoc");
/// let beta = net.new_host("β").await?;
/// let connector = Connector::new(Arc::new(beta)).alias("alpha", "α");
/// assert_eq!(connector.resolve(&"http://alpha:8080/x".parse().unwrap())?, "α:8080");
/// assert_eq!(connector.resolve(&"https://gamma/".parse().unwrap())?, "gamma:443");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connector {
    net: Arc<dyn Networker>,
    aliases: Arc<HashMap<String, String>>,
    resolve: Option<Arc<Resolve>>,
}

impl Connector {
    /// Dials through `net`, using URI hosts as virtnet hosts.
    pub fn new(net: Arc<dyn Networker>) -> Connector {
        Connector {
            net,
            aliases: Arc::default(),
            resolve: None,
        }
    }

    /// Dials through `net` at the address `resolve` makes of each URI.
    pub fn with_resolver(
        net: Arc<dyn Networker>,
        resolve: impl Fn(&Uri) -> io::Result<String> + Send + Sync + 'static,
    ) -> Connector {
        Connector {
            net,
            aliases: Arc::default(),
            resolve: Some(Arc::new(resolve)),
        }
    }

    /// URI host `uri_host` means virtnet host `host`.
    pub fn alias(mut self, uri_host: &str, host: &str) -> Connector {
        Arc::make_mut(&mut self.aliases).insert(uri_host.to_owned(), host.to_owned());
        self
    }

    /// The virtnet address (`host:port`) a request for `uri` dials.
    pub fn resolve(&self, uri: &Uri) -> io::Result<String> {
        if let Some(resolve) = &self.resolve {
            return resolve(uri);
        }
        let host = uri.host().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("URI {uri} has no host"),
            )
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = self.aliases.get(host).map_or(host, String::as_str);
        let port = match (uri.port_u16(), uri.scheme_str()) {
            (Some(port), _) => port,
            (None, Some("https")) => 443,
            (None, _) => 80,
        };
        Ok(join_host_port(host, &port.to_string()))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Conn>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Conn>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (net, addr) = (self.net.clone(), self.resolve(&uri));
        Box::pin(async move { Ok(TokioIo::new(net.dial(&addr?).await?)) })
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("network", &self.net.network())
            .field("host", &self.net.name())
            .field("aliases", &self.aliases)
            .field("custom_resolver", &self.resolve.is_some())
            .finish()
    }
}

/// Plain connection metadata: no ALPN, no proxy.
impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
