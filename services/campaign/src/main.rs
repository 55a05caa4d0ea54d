//! `tierline-campaign`: serve the campaign service (default) or apply its migrations.

tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tierline_runtime::app::main::<tierline_campaign::app::CampaignService>().await
}
