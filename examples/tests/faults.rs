//! Faults under tokio's paused clock: exact virtual times, and the same
//! seed gives the same story, run after run.

use virtnet_examples::counter::partition_story;

#[tokio::test(start_paused = true)]
async fn a_partition_isolates_the_leader_exactly() {
    let story = partition_story(7).await.expect("story");
    assert_eq!(
        story.log,
        [
            "  40ms α connected to β and γ",
            "  64ms α commit 1 (ack from β)",
            "  64ms partition {α} | {β,γ}",
            " 164ms α no quorum for 2",
            " 164ms heal",
            " 164ms α commit 3 (ack from β)",
        ]
    );
    let at = |line: &str| {
        story
            .trace
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line:?} not in the trace: {:#?}", story.trace))
    };
    // Increment 2 was written during the partition and delivered only
    // after the heal, after which the followers acknowledged it.
    assert!(at("partition {α} | {β,γ}") < at(r#"write α:1 -> β:1 "inc 2\n""#));
    assert!(at(r#"write α:1 -> β:1 "inc 2\n""#) < at("heal {α} | {β,γ}"));
    assert!(at("heal {α} | {β,γ}") < at(r#"write β:1 -> α:1 "ack 2\n""#));
    // The leader's "inc 2\n" (6 bytes to each follower) was held.
    assert!(at("heal {α} | {β,γ}") < at("released α:1 -> β:1: 6 bytes held by a partition"));
    assert!(at("heal {α} | {β,γ}") < at("released α:2 -> γ:1: 6 bytes held by a partition"));
    assert_eq!(story.trace[1], "latency {α} | {β,γ} 10ms jitter 5ms seed 7");
    assert_eq!(story.followers, [("β".to_owned(), 3), ("γ".to_owned(), 3)]);
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_tells_the_same_story() {
    let first = partition_story(42).await.expect("first run");
    for _ in 0..3 {
        assert_eq!(partition_story(42).await.expect("again"), first);
    }
}
