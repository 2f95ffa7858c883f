//! The streaming benchmark: how many cards a second one Inspect stream checks end to end
//! (validation, BIN lookup and masking of each), against a running server.
//!
//! Run: `cargo run --release -- --max-concurrent-requests 4096 &` then
//! `cargo run --release --example inspect_load -- [URL] [CARDS]` (defaults
//! `http://127.0.0.1:50051` and 2,000,000). Batches of 1,000 cards are sent ahead of the
//! answers (16 batches in flight), as a batch job would stream a file.

use std::time::Instant;

use card_lookup::proto::cardlookup::v1 as pb;
use pb::card_lookup_service_client::CardLookupServiceClient;
use tokio_stream::wrappers::ReceiverStream;

/// The allocator the service uses (src/main.rs), so both ends are measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1000;
const IN_FLIGHT: usize = 16;

/// Published test numbers and a few invalid ones, as a settlement file has them.
const NUMBERS: [&str; 8] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
    "6228480000000000000",
    "4111111111111112",
    "411111",
];

#[tokio::main]
#[allow(clippy::cast_precision_loss)] // a rate for people to read
async fn main() {
    let (flags, mut args): (Vec<String>, Vec<String>) = std::env::args()
        .skip(1)
        .partition(|arg| arg.starts_with("--"));
    let bin_answers = match flags.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => pb::BinAnswerLayout::PerResult,
        ["--shared-bins"] => pb::BinAnswerLayout::Shared,
        _ => panic!("the one option is --shared-bins"),
    };
    args.reverse();
    let url = args
        .pop()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let cards: usize = args
        .pop()
        .map_or(2_000_000, |n| n.parse().expect("CARDS is a number"));
    let batches = cards.div_ceil(BATCH);

    let mut client = CardLookupServiceClient::connect(url)
        .await
        .expect("the server accepts connections")
        .max_decoding_message_size(64 * 1024 * 1024);
    let (sender, requests) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let batch = pb::InspectRequest {
        items: (0..BATCH)
            .map(|i| pb::InspectItem {
                id: i.to_string(),
                number: NUMBERS[i % NUMBERS.len()].to_owned(),
            })
            .collect(),
        mask_style: pb::MaskStyle::LastFour.into(),
        bin_answers: bin_answers.into(),
    };
    let started = Instant::now();
    tokio::spawn(async move {
        for _ in 0..batches {
            if sender.send(batch.clone()).await.is_err() {
                break;
            }
        }
    });
    let mut answers = client
        .inspect(ReceiverStream::new(requests))
        .await
        .expect("Inspect starts")
        .into_inner();
    let mut answered = 0usize;
    while let Some(answer) = answers.message().await.expect("the stream does not fail") {
        answered += answer.results.len();
    }
    let elapsed = started.elapsed();
    assert_eq!(answered, batches * BATCH, "every card answered");
    println!(
        "inspect: {answered} cards in {:.2} s: {:.0} cards/s on one stream",
        elapsed.as_secs_f64(),
        answered as f64 / elapsed.as_secs_f64()
    );
}
