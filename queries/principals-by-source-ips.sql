-- Principals with the most distinct source addresses: a person's credentials used from many
-- networks (token theft, password spraying from a botnet, a shared key), per source.
--
-- Each (principal, address, session) is seen once in `seen`; a principal's addresses and
-- sessions are then counted as groups of it rather than with two count(DISTINCT …) beside
-- count(*), which DataFusion evaluates group by group, several times slower
-- (docs/history.md, "Measured"). The answer is the same.
WITH seen AS (
    SELECT source,
           coalesce(principal_name, principal_id) AS principal,
           src_ip,
           session_key,
           count(*) AS events
    FROM events
    WHERE src_ip IS NOT NULL
    GROUP BY 1, 2, 3, 4
)
SELECT source,
       principal,
       sum(addresses) AS source_ips,
       sum(sessions) AS sessions,
       sum(events) AS events
FROM (SELECT source, principal, 1 AS addresses, 0 AS sessions, 0 AS events
      FROM seen
      GROUP BY source, principal, src_ip
      UNION ALL
      SELECT source, principal, 0, 1, sum(events)
      FROM seen
      GROUP BY source, principal, session_key)
GROUP BY source, principal
ORDER BY source_ips DESC, events DESC, source, principal
LIMIT 20
