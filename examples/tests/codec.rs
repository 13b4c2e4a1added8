//! tokio-util codecs work over a virtnet connection as over TCP.

use futures::{SinkExt, StreamExt};
use tokio_util::codec::{Framed, LinesCodec};

#[tokio::test]
async fn framed_lines_both_ways() {
    let net = pipenet::Network::new("codec");
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let (c, s) = tokio::try_join!(beta.dial("α:1"), l.accept()).unwrap();
    let (mut c, mut s) = (
        Framed::new(c, LinesCodec::new()),
        Framed::new(s, LinesCodec::new()),
    );
    c.send("hello α").await.unwrap();
    c.send("second line").await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), "hello α");
    assert_eq!(s.next().await.unwrap().unwrap(), "second line");
    let peer = s.get_ref().peer_addr().to_string();
    s.send(format!("hi {peer}")).await.unwrap();
    assert_eq!(c.next().await.unwrap().unwrap(), "hi β:1");
    drop(s);
    assert!(
        c.next().await.is_none(),
        "end of stream after the peer closed"
    );
    net.close().await.unwrap();
}
