//! What campaigns produced, as messages: launch counts, members, suppressions, deliveries and
//! acks, previews and reports.

use tierline_proto::campaign::v1 as pb;

use super::{
    campaign::offer_to_proto, campaign::status_to_proto, channel_to_proto, datetime, money,
    timestamp,
};
use crate::{
    domain::ports::{AckOutcome, MemberRow, SuppressionReason, SuppressionRow},
    domain::{
        campaign::Campaign,
        deliveries::{AckInput, AckResult, OutgoingDelivery},
        holdout::Arm,
        preview::Preview,
        reads::ReportAt,
        report::{ArmFigures, Measurability},
        service::LaunchSummary,
        stats::Interval,
    },
};

pub(crate) fn reason_to_proto(reason: SuppressionReason) -> i32 {
    match reason {
        SuppressionReason::NoConsent => pb::SuppressionReason::NoConsent,
        SuppressionReason::Erased => pb::SuppressionReason::Erased,
        SuppressionReason::FrequencyCap => pb::SuppressionReason::FrequencyCap,
        SuppressionReason::AlreadyMember => pb::SuppressionReason::AlreadyMember,
        SuppressionReason::UnknownCustomer => pb::SuppressionReason::UnknownCustomer,
    }
    .into()
}

/// A reason filter: `None` for UNSPECIFIED (any reason).
pub(crate) fn reason_from_proto(value: i32) -> Option<SuppressionReason> {
    match pb::SuppressionReason::try_from(value).ok()? {
        pb::SuppressionReason::NoConsent => Some(SuppressionReason::NoConsent),
        pb::SuppressionReason::Erased => Some(SuppressionReason::Erased),
        pb::SuppressionReason::FrequencyCap => Some(SuppressionReason::FrequencyCap),
        pb::SuppressionReason::AlreadyMember => Some(SuppressionReason::AlreadyMember),
        pb::SuppressionReason::UnknownCustomer => Some(SuppressionReason::UnknownCustomer),
        pb::SuppressionReason::Unspecified => None,
    }
}

pub(crate) fn arm_to_proto(arm: Arm) -> i32 {
    match arm {
        Arm::Treatment => pb::Arm::Treatment,
        Arm::Control => pb::Arm::Control,
    }
    .into()
}

/// An arm filter: `None` for UNSPECIFIED (both arms).
pub(crate) fn arm_from_proto(value: i32) -> Option<Arm> {
    match pb::Arm::try_from(value).ok()? {
        pb::Arm::Treatment => Some(Arm::Treatment),
        pb::Arm::Control => Some(Arm::Control),
        pb::Arm::Unspecified => None,
    }
}

fn suppression_counts(counts: &[(SuppressionReason, i64)]) -> Vec<pb::SuppressionCount> {
    counts
        .iter()
        .filter(|(_, customers)| *customers > 0)
        .map(|(reason, customers)| pb::SuppressionCount {
            reason: reason_to_proto(*reason),
            customers: *customers,
        })
        .collect()
}

pub(crate) fn summary_to_proto(summary: &LaunchSummary) -> pb::LaunchSummary {
    pb::LaunchSummary {
        matched: summary.matched,
        treatment_members: summary.counts.treatment,
        control_members: summary.counts.control,
        suppressed: suppression_counts(&summary.counts.suppressed),
        complete: summary.complete,
    }
}

fn delivery_status(status: &str) -> i32 {
    match status {
        "pending" => pb::DeliveryStatus::Pending,
        "leased" => pb::DeliveryStatus::Leased,
        "sent" => pb::DeliveryStatus::Sent,
        "failed" => pb::DeliveryStatus::Failed,
        "withdrawn" => pb::DeliveryStatus::Withdrawn,
        _ => pb::DeliveryStatus::Unspecified,
    }
    .into()
}

pub(crate) fn member_to_proto(campaign: &Campaign, row: MemberRow) -> pb::CampaignMember {
    let (delivery_id, status) = row
        .delivery
        .map(|(id, status)| (id.to_string(), delivery_status(&status)))
        .unwrap_or_default();
    pb::CampaignMember {
        campaign_id: campaign.id.to_string(),
        customer_id: row.member.customer_id.to_string(),
        entry: row.member.entry,
        arm: arm_to_proto(row.member.arm),
        entered_at: Some(timestamp(row.member.entered_at)),
        attribution_ends_at: Some(timestamp(row.member.attribution_ends_at)),
        delivery_id,
        delivery_status: status,
        converted: row.conversions > 0,
        attributed_revenue: Some(money(row.revenue_minor, &campaign.program.currency)),
    }
}

pub(crate) fn suppression_to_proto(campaign: &Campaign, row: SuppressionRow) -> pb::Suppression {
    pb::Suppression {
        campaign_id: campaign.id.to_string(),
        customer_id: row.customer_id.to_string(),
        reason: reason_to_proto(row.reason),
        suppressed_at: Some(timestamp(row.suppressed_at)),
    }
}

pub(crate) fn delivery_to_proto(delivery: OutgoingDelivery) -> pb::Delivery {
    pb::Delivery {
        delivery_id: delivery.lease.id.to_string(),
        campaign_id: delivery.lease.campaign_id.to_string(),
        customer_id: delivery.lease.customer_id.to_string(),
        channel: channel_to_proto(delivery.channel),
        offer: delivery.offer.as_ref().map(offer_to_proto),
        lease_expires_at: Some(timestamp(delivery.lease.lease_expires_at)),
        attempt: delivery.lease.attempt,
        created_at: Some(timestamp(delivery.lease.created_at)),
    }
}

pub(crate) fn ack_input(ack: pb::DeliveryAck) -> AckInput {
    AckInput {
        delivery_id: ack.delivery_id,
        sent: match pb::DeliveryOutcome::try_from(ack.outcome) {
            Ok(pb::DeliveryOutcome::Sent) => Some(true),
            Ok(pb::DeliveryOutcome::Failed) => Some(false),
            _ => None,
        },
        failure_reason: ack.failure_reason,
        // An unreadable time counts as "not given": the ack's own time.
        occurred_at: ack.occurred_at.as_ref().and_then(datetime),
        provider_message_id: ack.provider_message_id,
    }
}

pub(crate) fn ack_result((delivery_id, result): (String, AckResult)) -> pb::AckItemResult {
    let (status, message) = match result {
        Ok(AckOutcome::Accepted) => (pb::AckStatus::Accepted, String::new()),
        Ok(AckOutcome::AlreadyAcked) => (pb::AckStatus::AlreadyAcked, String::new()),
        Ok(AckOutcome::Conflict) => (
            pb::AckStatus::Conflict,
            "the delivery already has the other outcome".to_owned(),
        ),
        Ok(AckOutcome::NotFound) => (pb::AckStatus::NotFound, String::new()),
        Ok(AckOutcome::Withdrawn) => (
            pb::AckStatus::Invalid,
            "the delivery was withdrawn before it was leased".to_owned(),
        ),
        // The domain refuses the whole call (FAILED_PRECONDITION) before it gets here.
        Ok(AckOutcome::NotLeaseHolder) => (
            pb::AckStatus::Invalid,
            "the delivery is leased to another adapter".to_owned(),
        ),
        Err(message) => (pb::AckStatus::Invalid, message),
    };
    pb::AckItemResult {
        delivery_id,
        status: status.into(),
        message,
    }
}

pub(crate) fn preview_to_proto(preview: Preview) -> pb::PreviewAudienceResponse {
    pb::PreviewAudienceResponse {
        matched: preview.matched,
        eligible: preview.eligible,
        expected_treatment: preview.treatment,
        expected_control: preview.control,
        sample_customer_ids: preview.sample.iter().map(ToString::to_string).collect(),
        suppressed: suppression_counts(&preview.suppressed),
        computed_at: Some(timestamp(preview.computed_at)),
    }
}

fn interval(value: Interval) -> pb::ConfidenceInterval {
    pb::ConfidenceInterval {
        lower: value.lower,
        upper: value.upper,
    }
}

fn arm_stats(figures: &ArmFigures, currency: &str) -> pb::ArmStats {
    pb::ArmStats {
        members: figures.members,
        entries: figures.entries,
        converters: figures.converters,
        conversion_rate: figures.conversion_rate,
        revenue: Some(money(figures.revenue, currency)),
        revenue_per_member_minor: figures.revenue_per_member,
        revenue_per_member_ci: figures.revenue_per_member_ci.map(interval),
    }
}

pub(crate) fn report_to_proto(at: ReportAt) -> pb::CampaignReport {
    let currency = at.campaign.program.currency.clone();
    let report = at.report;
    let conversion = report.conversion;
    pb::CampaignReport {
        campaign_id: at.campaign.id.to_string(),
        status: status_to_proto(at.campaign.status),
        currency: currency.clone(),
        computed_at: Some(timestamp(at.computed_at)),
        figures_final: at.figures_final,
        treatment: Some(arm_stats(&report.treatment, &currency)),
        control: Some(arm_stats(&report.control, &currency)),
        measurability: match report.measurability {
            Measurability::Measurable => pb::Measurability::Measurable,
            Measurability::NoControlGroup => pb::Measurability::NoControlGroup,
            Measurability::SampleTooSmall => pb::Measurability::SampleTooSmall,
        }
        .into(),
        absolute_uplift: conversion.map(|c| c.absolute),
        absolute_uplift_ci: conversion.map(|c| interval(c.absolute_ci)),
        relative_uplift: conversion.and_then(|c| c.relative),
        relative_uplift_ci: conversion.and_then(|c| c.relative_ci).map(interval),
        p_value: conversion.map(|c| c.p_value),
        revenue_per_member_diff_minor: report.revenue_difference.map(|(d, _)| d),
        revenue_per_member_diff_ci: report.revenue_difference.map(|(_, ci)| interval(ci)),
        incremental_revenue: report
            .incremental_revenue
            .map(|amount| money(amount, &currency)),
        contacts: report.contacts,
        cost: Some(money(report.cost, &currency)),
        roi: report.roi,
    }
}
