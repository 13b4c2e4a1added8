//! tonic servers on virtnet: `Server::builder()…serve_with_incoming(listener)`
//! (a [`Listener`](crate::Listener) is a stream of connections), with the
//! peer's virtnet address as the connect info.

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
