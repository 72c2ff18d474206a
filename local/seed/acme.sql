-- Tenant acme: marketing campaigns and the tasks that deliver them.
CREATE TABLE campaign (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  budget numeric(12, 2),
  status text,
  starts_at timestamptz
);

CREATE TABLE task (
  id uuid PRIMARY KEY,
  title text NOT NULL,
  status text DEFAULT 'open',
  assignee_id text,
  campaign_id uuid REFERENCES campaign (id),
  due_date date,
  estimate_hours int
);
