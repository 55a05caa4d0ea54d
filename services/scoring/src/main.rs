//! `tierline-scoring`: serve the scoring service (default) or apply its migrations.

tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tierline_runtime::app::main::<tierline_scoring::app::ScoringService>().await
}
