//! A replicated counter whose leader is cut off by a partition, on pipenet
//! under tokio's paused clock: 10 ms links and a 100 ms lease, yet it runs
//! in an instant, and the same seed tells the same story every time.
//!
//! `cargo run -p virtnet-examples --example partition_counter [SEED]`

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::io::Result<()> {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let story = virtnet_examples::counter::partition_story(seed).await?;
    println!("seed {seed}\n\nthe leader's log:");
    for line in &story.log {
        println!("  {line}");
    }
    println!("\nthe network's trace:");
    for line in &story.trace {
        println!("  {line}");
    }
    println!("\nfollowers: {:?}", story.followers);
    Ok(())
}
