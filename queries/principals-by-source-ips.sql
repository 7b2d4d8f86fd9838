-- Principals with the most distinct source addresses: a person's credentials used from many
-- networks (token theft, password spraying from a botnet, a shared key), per source.
--
-- One pass over the events groups them two ways at once (GROUPING SETS): by (source,
-- principal, address) and by (source, principal, session). Each group is then one address or
-- one session of its principal: in an address group `session_key` is NULL, in a session group
-- `src_ip` is, so count() of each counts its own groups. The same answer as two
-- count(DISTINCT …) beside count(*), which DataFusion evaluates group by group, several times
-- slower; and unlike a WITH table named twice, the events are read once (docs/history.md,
-- "Measured").
SELECT source,
       principal,
       count(src_ip) AS source_ips,
       count(session_key) AS sessions,
       sum(events) FILTER (WHERE session_key IS NOT NULL) AS events
FROM (SELECT source,
             coalesce(principal_name, principal_id) AS principal,
             src_ip,
             session_key,
             count(*) AS events
      FROM events
      WHERE src_ip IS NOT NULL
      GROUP BY GROUPING SETS ((source, coalesce(principal_name, principal_id), src_ip),
                              (source, coalesce(principal_name, principal_id), session_key)))
GROUP BY source, principal
ORDER BY source_ips DESC, events DESC, source, principal
LIMIT 20
