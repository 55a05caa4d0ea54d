-- The report counts each customer once and each purchase once per customer (a purchase may fall
-- into the windows of several entries of a triggered campaign); it reads a campaign's attributed
-- purchases, which the primary key (activity first) cannot find by campaign.
CREATE INDEX attributed_purchases_by_campaign ON attributed_purchases (campaign_id, customer_id);
