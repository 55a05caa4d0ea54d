//! The cases every backend must pass.

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use tierline_campaign::{
    CampaignError,
    domain::{
        attribution::{ActivityEvent, Attributor, Purchase},
        campaign::{Audience, Campaign, Channel, Definition, Kind, ProgramFacts, Status},
        holdout::Arm,
    },
    storage::{
        Ack, AckOutcome, AttributionTarget, CampaignFilter, CampaignStore, NewMember,
        SuppressionReason,
    },
};
use uuid::Uuid;

fn campaign() -> Campaign {
    let definition = Definition {
        name: "Win-back".into(),
        description: String::new(),
        program_id: Uuid::now_v7(),
        kind: Kind::OneShot,
        channel: Channel::Email,
        audience: Audience::default(),
        holdout_bps: 1_000,
        offer: None,
        cost_per_contact_minor: 0,
        fixed_cost_minor: 0,
        start_at: None,
        end_at: None,
        attribution_window_days: 30,
        re_entry_period_days: 0,
        trigger: None,
    };
    let program = ProgramFacts {
        currency: "KRW".into(),
        tier_codes: vec!["WELCOME".into()],
        brands: vec![],
        sales_channels: vec![],
    };
    let now = Utc::now().trunc_subsecs(6);
    Campaign::draft(Uuid::now_v7(), definition, program, "ops", now)
}

fn member(customer_id: Uuid, arm: Arm) -> NewMember {
    let now = Utc::now().trunc_subsecs(6);
    NewMember {
        customer_id,
        entry: 1,
        arm,
        entered_at: now - Duration::days(1),
        attribution_ends_at: now + Duration::days(29),
    }
}

async fn enrol(
    store: &Arc<dyn CampaignStore>,
    campaign: &Campaign,
    members: &[NewMember],
    cursor: Uuid,
) {
    let mut tx = store.begin_enrolment().await.expect("tx");
    tx.lock_contacts().await.expect("lock");
    tx.add_members(campaign.id, Channel::Email, members, Utc::now())
        .await
        .expect("members");
    tx.suppress(campaign.id, "launch", &[], Utc::now())
        .await
        .expect("suppress");
    tx.advance_launch(campaign.id, members.len() as i64, cursor)
        .await
        .expect("advance");
    tx.commit().await.expect("commit");
}

pub(crate) async fn campaigns_are_created_once_per_key_and_saved_by_revision(
    store: Arc<dyn CampaignStore>,
) {
    let first = campaign();
    assert_eq!(
        store
            .create(&first, Some(("key-1", b"digest")))
            .await
            .expect("create"),
        None
    );
    let retry = campaign();
    let prior = store
        .create(&retry, Some(("key-1", b"digest")))
        .await
        .expect("replay");
    assert_eq!(prior, Some((first.id, b"digest".to_vec())));
    assert!(
        store.campaign(retry.id).await.expect("read").is_none(),
        "nothing stored on a replay"
    );
    let mut stored = store
        .campaign(first.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored, first);

    stored.definition.name = "Renamed".into();
    stored.revision += 1;
    store.save(&stored).await.expect("save");
    // A writer that read revision 1 loses.
    let mut stale = first.clone();
    stale.revision += 1;
    assert!(matches!(
        store.save(&stale).await,
        Err(CampaignError::Aborted(_))
    ));
    assert_eq!(
        store
            .campaign(first.id)
            .await
            .expect("read")
            .expect("stored")
            .definition
            .name,
        "Renamed"
    );
}

pub(crate) async fn a_replayed_enrolment_creates_nothing_twice(store: Arc<dyn CampaignStore>) {
    let campaign = campaign();
    store.create(&campaign, None).await.expect("create");
    let (treated, held_out) = (Uuid::now_v7(), Uuid::now_v7());
    let members = [
        member(treated, Arm::Treatment),
        member(held_out, Arm::Control),
    ];
    enrol(&store, &campaign, &members, held_out).await;
    enrol(&store, &campaign, &members, held_out).await;
    let counts = store.membership_counts(campaign.id).await.expect("counts");
    assert_eq!((counts.treatment, counts.control), (1, 1));
    let listed = store
        .members(campaign.id, None, None, 10)
        .await
        .expect("members");
    assert_eq!(listed.len(), 2);
    assert!(
        listed[0].delivery.is_some() && listed[1].delivery.is_none(),
        "a delivery per treatment entry only"
    );
    // The frequency cap sees the pending delivery as a contact.
    let mut tx = store.begin_enrolment().await.expect("tx");
    let contacts = tx
        .recent_contacts(&[treated, held_out], Utc::now() - Duration::days(7), None)
        .await
        .expect("contacts");
    assert_eq!(
        (contacts.get(&treated), contacts.get(&held_out)),
        (Some(&1), None)
    );
    tx.suppress(
        campaign.id,
        "launch",
        &[(held_out, SuppressionReason::FrequencyCap)],
        Utc::now(),
    )
    .await
    .expect("suppress");
    tx.suppress(
        campaign.id,
        "launch",
        &[(held_out, SuppressionReason::FrequencyCap)],
        Utc::now(),
    )
    .await
    .expect("suppress again");
    tx.commit().await.expect("commit");
    let counts = store.membership_counts(campaign.id).await.expect("counts");
    assert_eq!(counts.suppressed, [(SuppressionReason::FrequencyCap, 1)]);
    let stored = store
        .campaign(campaign.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        (stored.launch.matched, stored.launch.cursor),
        (4, Some(held_out))
    );
}

pub(crate) async fn leases_are_exclusive_expire_and_the_first_ack_of_the_holder_wins(
    store: Arc<dyn CampaignStore>,
) {
    let campaign = campaign();
    store.create(&campaign, None).await.expect("create");
    let customers: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let members: Vec<NewMember> = customers
        .iter()
        .map(|c| member(*c, Arm::Treatment))
        .collect();
    enrol(&store, &campaign, &members, customers[2]).await;
    let now = Utc::now();
    let first = store
        .lease(Channel::Email, "adapter-a", 2, Duration::seconds(60), now)
        .await
        .expect("lease");
    let second = store
        .lease(Channel::Email, "adapter-b", 5, Duration::seconds(60), now)
        .await
        .expect("lease");
    assert_eq!(
        (first.len(), second.len()),
        (2, 1),
        "no delivery leased twice"
    );
    assert!(
        store
            .lease(Channel::Sms, "adapter-c", 5, Duration::seconds(60), now)
            .await
            .expect("lease")
            .is_empty()
    );
    let sent = |id: Uuid, failure: Option<&str>| Ack {
        delivery_id: id,
        failure: failure.map(str::to_owned),
        occurred_at: now,
        provider_message_id: String::new(),
    };
    // Only the lease holder acknowledges, and a batch with another adapter's delivery records
    // nothing: adapter-a's own delivery stays leased to it.
    assert_eq!(
        store
            .ack(
                "adapter-a",
                &[sent(first[1].id, None), sent(second[0].id, None)],
                now
            )
            .await
            .expect("ack"),
        [AckOutcome::Accepted, AckOutcome::NotLeaseHolder]
    );
    assert_eq!(
        store
            .still_leased(&[first[1].id], "adapter-a", now)
            .await
            .expect("leased"),
        [first[1].id],
        "rolled back"
    );
    // After the lease expires, another adapter gets it with the next attempt.
    let later = now + Duration::seconds(61);
    let again = store
        .lease(Channel::Email, "adapter-c", 5, Duration::seconds(60), later)
        .await
        .expect("lease");
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|d| d.attempt == 2));
    assert!(
        store
            .still_leased(&[first[0].id], "adapter-a", later)
            .await
            .expect("leased")
            .is_empty()
    );

    // The adapter whose lease expired and was given to another may no longer acknowledge.
    assert_eq!(
        store
            .ack("adapter-a", &[sent(first[0].id, None)], later)
            .await
            .expect("ack"),
        [AckOutcome::NotLeaseHolder]
    );
    let outcomes = store
        .ack(
            "adapter-c",
            &[
                sent(first[0].id, None),
                sent(first[0].id, None),
                sent(first[0].id, Some("bounced")),
                sent(Uuid::now_v7(), None),
            ],
            later,
        )
        .await
        .expect("ack");
    assert_eq!(
        outcomes,
        [
            AckOutcome::Accepted,
            AckOutcome::AlreadyAcked,
            AckOutcome::Conflict,
            AckOutcome::NotFound
        ]
    );
    assert_eq!(
        store
            .contacts_and_open_windows(campaign.id, later)
            .await
            .expect("contacts"),
        (1, true)
    );
    assert_eq!(
        store.withdraw_pending(campaign.id).await.expect("withdraw"),
        0,
        "all are leased"
    );
    // Others do not learn the outcome: still not theirs.
    assert_eq!(
        store
            .ack("adapter-b", &[sent(first[0].id, None)], later)
            .await
            .expect("ack"),
        [AckOutcome::NotLeaseHolder]
    );
    // The holder's ack counts after its lease expired, as long as nobody leased it again.
    let other = again
        .iter()
        .find(|delivery| delivery.id != first[0].id)
        .expect("another delivery");
    assert_eq!(
        store
            .ack(
                "adapter-c",
                &[sent(other.id, Some("bounced"))],
                later + Duration::seconds(120)
            )
            .await
            .expect("ack"),
        [AckOutcome::Accepted]
    );
}

pub(crate) async fn attribution_counts_each_purchase_once_and_nets_refunds(
    store: Arc<dyn CampaignStore>,
) {
    let campaign = campaign();
    store.create(&campaign, None).await.expect("create");
    let (buyer, other) = (Uuid::now_v7(), Uuid::now_v7());
    enrol(
        &store,
        &campaign,
        &[member(buyer, Arm::Treatment), member(other, Arm::Control)],
        other,
    )
    .await;
    let targets = store
        .attribution_targets(&[buyer], Utc::now() - Duration::days(1))
        .await
        .expect("targets");
    assert_eq!(targets.len(), 1);
    let (target, facts) = targets[0].clone();
    assert_eq!(facts.currency, "KRW");
    let purchase = Uuid::now_v7();
    let batch = [(purchase, target, 10_000)];
    store
        .apply_attribution(&batch, &[], "activity", "c1", Utc::now())
        .await
        .expect("apply");
    store
        .apply_attribution(&batch, &[], "activity", "c1", Utc::now())
        .await
        .expect("replay");
    let refund = Uuid::now_v7();
    store
        .apply_attribution(
            &[],
            &[(refund, purchase, 4_000)],
            "activity",
            "c2",
            Utc::now(),
        )
        .await
        .expect("refund");
    store
        .apply_attribution(
            &[],
            &[(refund, purchase, 4_000)],
            "activity",
            "c2",
            Utc::now(),
        )
        .await
        .expect("replay");
    let (treatment, control) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    assert_eq!(
        (treatment.members, treatment.converters, treatment.revenue),
        (1, 1, 6_000)
    );
    assert_eq!(
        (control.members, control.converters, control.revenue),
        (1, 0, 0)
    );
    // Refunding the rest: no longer a conversion.
    store
        .apply_attribution(
            &[],
            &[(Uuid::now_v7(), purchase, 9_000)],
            "activity",
            "c3",
            Utc::now(),
        )
        .await
        .expect("refund the rest");
    let (treatment, _) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    assert_eq!((treatment.converters, treatment.revenue), (0, 0));
    assert_eq!(
        store.cursor("activity").await.expect("cursor").as_deref(),
        Some("c3")
    );
}

pub(crate) async fn the_scheduler_sees_due_campaigns_and_lists_filter_and_page(
    store: Arc<dyn CampaignStore>,
) {
    let now = Utc::now().trunc_subsecs(6);
    let save = |mut c: Campaign, status: Status| {
        c.status = status;
        c.revision += 1;
        c
    };
    let mut due_start = campaign();
    due_start.definition.start_at = Some(now - Duration::minutes(1));
    let mut later = campaign();
    later.definition.start_at = Some(now + Duration::hours(1));
    let mut ended = campaign();
    ended.definition.end_at = Some(now - Duration::minutes(1));
    let unfinished_launch = campaign();
    for c in [&due_start, &later, &ended, &unfinished_launch] {
        store.create(c, None).await.expect("create");
    }
    store
        .save(&save(due_start.clone(), Status::Scheduled))
        .await
        .expect("scheduled");
    store
        .save(&save(later.clone(), Status::Scheduled))
        .await
        .expect("scheduled");
    store
        .save(&save(ended.clone(), Status::Running))
        .await
        .expect("running");
    store.complete_launch(ended.id).await.expect("complete");
    store
        .save(&save(unfinished_launch.clone(), Status::Running))
        .await
        .expect("running");
    let mut due = store.due(now).await.expect("due");
    due.sort();
    let mut expected = vec![due_start.id, ended.id, unfinished_launch.id];
    expected.sort();
    assert_eq!(due, expected);

    let scheduled = store
        .list(
            &CampaignFilter {
                status: Some(Status::Scheduled),
                ..CampaignFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("list");
    assert_eq!(scheduled.len(), 2);
    let first_page = store
        .list(&CampaignFilter::default(), None, 3)
        .await
        .expect("page");
    let last = first_page.last().expect("three");
    let rest = store
        .list(
            &CampaignFilter::default(),
            Some((last.created_at, last.id)),
            3,
        )
        .await
        .expect("next page");
    assert_eq!(first_page.len() + rest.len(), 4, "newest first, no overlap");
    assert!(first_page.iter().all(|c| rest.iter().all(|r| r.id != c.id)));
}

pub(crate) async fn members_page_in_order_and_the_report_aggregates_each_arm(
    store: Arc<dyn CampaignStore>,
) {
    let campaign = campaign();
    store.create(&campaign, None).await.expect("create");
    let customers: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let members: Vec<NewMember> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| member(*c, if i < 3 { Arm::Treatment } else { Arm::Control }))
        .collect();
    enrol(&store, &campaign, &members, customers[4]).await;
    let first = store
        .members(campaign.id, None, None, 2)
        .await
        .expect("page");
    let rest = store
        .members(campaign.id, None, Some(first[1].seq), 10)
        .await
        .expect("rest");
    let order: Vec<Uuid> = first
        .iter()
        .chain(&rest)
        .map(|row| row.member.customer_id)
        .collect();
    assert_eq!(order, customers, "in order of entry");
    let control = store
        .members(campaign.id, Some(Arm::Control), None, 10)
        .await
        .expect("control");
    assert_eq!(control.len(), 2);

    // Revenue of 100 and 300 in treatment, 50 in control.
    let target = |customer: Uuid| AttributionTarget {
        campaign_id: campaign.id,
        customer_id: customer,
        entry: 1,
        entered_at: members[0].entered_at,
        attribution_ends_at: members[0].attribution_ends_at,
    };
    store
        .apply_attribution(
            &[
                (Uuid::now_v7(), target(customers[0]), 100),
                (Uuid::now_v7(), target(customers[1]), 300),
                (Uuid::now_v7(), target(customers[3]), 50),
            ],
            &[],
            "activities",
            "c-1",
            Utc::now(),
        )
        .await
        .expect("attribution");
    let (treatment, control) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    assert_eq!(
        (treatment.members, treatment.converters, treatment.revenue),
        (3, 2, 400)
    );
    // Revenues 100, 300, 0: mean 133.33, M2 = 33.33² + 166.67² + 133.33² = 46,666.67.
    assert!(
        (treatment.revenue_m2 - 140_000.0 / 3.0).abs() < 1e-6,
        "{}",
        treatment.revenue_m2
    );
    assert_eq!(
        (control.members, control.converters, control.revenue),
        (2, 1, 50)
    );
    assert_eq!(
        store.cursor("activities").await.expect("cursor").as_deref(),
        Some("c-1")
    );
    let targets = store
        .attribution_targets(&[customers[0]], Utc::now())
        .await
        .expect("targets");
    assert_eq!(targets.len(), 1, "the window is open");
    let (contacts, open) = store
        .contacts_and_open_windows(campaign.id, Utc::now())
        .await
        .expect("contacts");
    assert_eq!((contacts, open), (0, true), "nothing sent yet");
}

pub(crate) async fn unreadable_feed_events_are_parked_once(store: Arc<dyn CampaignStore>) {
    let letter = |position: &str| tierline_runtime::follower::DeadLetter {
        position: position.to_owned(),
        reason: "customer_id is not an id".to_owned(),
        payload: vec![1, 2, 3],
    };
    let parked = store
        .park_dead_letters("activities", &[letter("v1.1.1"), letter("v1.1.2")])
        .await
        .expect("park");
    assert_eq!(parked, 2);
    let replayed = store
        .park_dead_letters("activities", &[letter("v1.1.2"), letter("v1.1.3")])
        .await
        .expect("park again");
    assert_eq!(replayed, 1, "a replayed letter is parked once");
    let other_feed = store
        .park_dead_letters("tier_changes", &[letter("v1.1.1")])
        .await
        .expect("park");
    assert_eq!(other_feed, 1, "positions are per feed");
}

pub(crate) async fn the_revenue_variance_survives_large_similar_amounts(
    store: Arc<dyn CampaignStore>,
) {
    let campaign = campaign();
    store.create(&campaign, None).await.expect("create");
    let customers: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let members: Vec<NewMember> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| member(*c, if i < 4 { Arm::Treatment } else { Arm::Control }))
        .collect();
    enrol(&store, &campaign, &members, customers[4]).await;
    let purchases: Vec<(Uuid, AttributionTarget, i64)> = customers[..4]
        .iter()
        .zip([1_000_000_004, 1_000_000_007, 1_000_000_013, 1_000_000_016])
        .map(|(customer, amount)| {
            let target = AttributionTarget {
                campaign_id: campaign.id,
                customer_id: *customer,
                entry: 1,
                entered_at: members[0].entered_at,
                attribution_ends_at: members[0].attribution_ends_at,
            };
            (Uuid::now_v7(), target, amount)
        })
        .collect();
    store
        .apply_attribution(&purchases, &[], "activities", "c-1", Utc::now())
        .await
        .expect("attribution");
    let (treatment, control) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    // Exact: mean 1,000,000,010, M2 = 36 + 9 + 9 + 36 = 90 (variance 30; numpy agrees). Σx² in
    // float8 is about 4e18, whose spacing is 512: the old Σx² − n·x̄² could not even see it.
    assert_eq!((treatment.members, treatment.revenue), (4, 4_000_000_040));
    assert!(
        (treatment.revenue_m2 - 90.0).abs() < 1e-6,
        "{}",
        treatment.revenue_m2
    );
    assert_eq!(
        (control.members, control.revenue, control.revenue_m2),
        (1, 0, 0.0)
    );
}

pub(crate) async fn the_report_counts_each_customer_once_and_each_purchase_once(
    store: Arc<dyn CampaignStore>,
) {
    // A triggered campaign whose customers may enter again before their window closes.
    let mut campaign = campaign();
    campaign.definition.kind = Kind::Triggered;
    campaign.definition.re_entry_period_days = 7;
    store.create(&campaign, None).await.expect("create");
    let customers: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let (twice, once, idle, control_buyer, control_idle) = (
        customers[0],
        customers[1],
        customers[2],
        customers[3],
        customers[4],
    );
    let first = member(twice, Arm::Treatment);
    let second = NewMember {
        entry: 2,
        entered_at: first.entered_at + Duration::hours(1),
        ..first.clone()
    };
    let members = vec![
        first.clone(),
        second.clone(),
        member(once, Arm::Treatment),
        member(idle, Arm::Treatment),
        member(control_buyer, Arm::Control),
        member(control_idle, Arm::Control),
    ];
    enrol(&store, &campaign, &members, control_idle).await;
    let target = |m: &NewMember| AttributionTarget {
        campaign_id: campaign.id,
        customer_id: m.customer_id,
        entry: m.entry,
        entered_at: m.entered_at,
        attribution_ends_at: m.attribution_ends_at,
    };
    // One purchase of 10,000 inside both windows of the customer who entered twice: attribution
    // counts it for each entry, the report once for the customer.
    let big = Uuid::now_v7();
    store
        .apply_attribution(
            &[
                (big, target(&first), 10_000),
                (big, target(&second), 10_000),
                (Uuid::now_v7(), target(&members[2]), 300),
                (Uuid::now_v7(), target(&members[4]), 50),
            ],
            &[],
            "activities",
            "c-1",
            Utc::now(),
        )
        .await
        .expect("attribution");
    let (treatment, control) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    // Per customer (numpy, services/campaign/tests/reference/report_statistics.py): treatment
    // revenues 10,000, 300, 0 → M2 64,726,666.67; control 50, 0 → M2 1,250.
    assert_eq!(
        (
            treatment.members,
            treatment.entries,
            treatment.converters,
            treatment.revenue
        ),
        (3, 4, 2, 10_300)
    );
    assert!(
        (treatment.revenue_m2 - 194_180_000.0 / 3.0).abs() < 1e-6,
        "{}",
        treatment.revenue_m2
    );
    assert_eq!(
        (
            control.members,
            control.entries,
            control.converters,
            control.revenue
        ),
        (2, 2, 1, 50)
    );
    assert!((control.revenue_m2 - 1_250.0).abs() < 1e-9);
    // Refunded in full: the customer no longer converts, in either entry.
    store
        .apply_attribution(
            &[],
            &[(Uuid::now_v7(), big, 10_000)],
            "activities",
            "c-2",
            Utc::now(),
        )
        .await
        .expect("refund");
    let (treatment, _) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    assert_eq!(
        (treatment.members, treatment.converters, treatment.revenue),
        (3, 1, 300)
    );
}

pub(crate) async fn a_purchase_dated_ahead_counts_for_an_entry_made_before_its_date(
    store: Arc<dyn CampaignStore>,
) {
    let campaign = campaign();
    store.create(&campaign, None).await.expect("create");
    let customer = Uuid::now_v7();
    // Recorded with a date 1.5 s ahead (the customer service accepts up to its clock skew) and
    // read by attribution at once.
    let purchase = Purchase {
        id: Uuid::now_v7(),
        customer_id: customer,
        amount_minor: 7_000,
        currency: "KRW".into(),
        occurred_at: Utc::now() + Duration::milliseconds(1_500),
        brand: "innisfree".into(),
        sales_channel: "store".into(),
    };
    let attributor = Attributor::new(store.clone(), Duration::minutes(5));
    let applying = {
        let attributor = attributor.clone();
        tokio::spawn(async move {
            attributor
                .apply(&[ActivityEvent::Purchase(purchase)], "c-1")
                .await
        })
    };
    // The customer enters after the batch was read but before the purchase's date: the purchase
    // lies in the window. Without the wait the batch had already passed it, for good.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let entered_at = Utc::now().trunc_subsecs(6);
    enrol(
        &store,
        &campaign,
        &[NewMember {
            customer_id: customer,
            entry: 1,
            arm: Arm::Treatment,
            entered_at,
            attribution_ends_at: entered_at + Duration::days(30),
        }],
        customer,
    )
    .await;
    applying.await.expect("task").expect("apply");
    let (treatment, _) = store.arm_aggregates(campaign.id).await.expect("aggregates");
    assert_eq!(
        (treatment.members, treatment.converters, treatment.revenue),
        (1, 1, 7_000)
    );
    assert_eq!(
        store.cursor("activities").await.expect("cursor").as_deref(),
        Some("c-1")
    );
}
