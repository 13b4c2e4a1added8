//! tonic servers on virtnet: `Server::builder()…serve_with_incoming(listener)`
//! (a [`Listener`](crate::Listener) is a stream of connections), with the
//! peer's virtnet address as the connect info. Clients dial through
//! [`Connector`](crate::integrations::Connector) (feature `hyper`) with
//! `Endpoint::connect_with_connector`. A complete server and client, run as
//! a doc test, is `virtnet_examples::serve_health` in the workspace's
//! `examples/` crate.

use tonic::transport::server::Connected;

use crate::{Addr, Conn};

/// The request extension `tonic::Request::extensions().get::<Addr>()`… is
/// the peer's virtnet address.
impl Connected for Conn {
    type ConnectInfo = Addr;

    fn connect_info(&self) -> Addr {
        self.peer_addr().clone()
    }
}
