-- Sessions by bytes exported: the sessions whose reads moved the most data, with how many
-- reads, from how many addresses, over what stretch of time. A session at the top that is
-- not a known backup or ETL job is the first one to explain.
SELECT session_key,
       min(principal_name) AS principal,
       sum(bytes) AS bytes_out,
       count(*) AS reads,
       count(DISTINCT src_ip) AS source_ips,
       min(time) AS first_seen,
       max(time) AS last_seen
FROM events
WHERE operation = 'read' AND bytes IS NOT NULL
GROUP BY session_key
ORDER BY bytes_out DESC, session_key
LIMIT 20
