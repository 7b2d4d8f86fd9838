-- Sessions by bytes exported: the sessions whose reads moved the most data, with how many
-- reads, from how many addresses, over what stretch of time. A session at the top that is
-- not a known backup or ETL job is the first one to explain.
--
-- The reads are first grouped by session and address, then by session: the addresses are
-- counted as groups rather than with count(DISTINCT src_ip) beside the other aggregates,
-- which DataFusion evaluates group by group, several times slower (docs/history.md,
-- "Measured"). The answer is the same.
SELECT session_key,
       min(principal) AS principal,
       sum(bytes_out) AS bytes_out,
       sum(reads) AS reads,
       count(src_ip) AS source_ips,
       min(first_seen) AS first_seen,
       max(last_seen) AS last_seen
FROM (SELECT session_key,
             src_ip,
             min(principal_name) AS principal,
             sum(bytes) AS bytes_out,
             count(*) AS reads,
             min(time) AS first_seen,
             max(time) AS last_seen
      FROM events
      WHERE operation = 'read' AND bytes IS NOT NULL
      GROUP BY session_key, src_ip)
GROUP BY session_key
ORDER BY bytes_out DESC, session_key
LIMIT 20
