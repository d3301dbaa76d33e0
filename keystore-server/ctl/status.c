/* keystorectl status and metrics output. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

static void iso(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "never");
}

static void duration(uint64_t s, char *buf, size_t len)
{
    if (s >= 86400)
        snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m", s / 86400, s / 3600 % 24,
                 s / 60 % 60);
    else if (s >= 3600)
        snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60)
        snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
    else
        snprintf(buf, len, "%" PRIu64 "s", s);
}

/* catalogue = etcd: in step with etcd (changes of the fleet arrive) or not, and why */
static void print_catalogue_text(const Keystore__CatalogueStatus *c)
{
    char when[32];

    if (c == NULL) {
        printf("catalogue:   embedded (this server's key directory only)\n");
        return;
    }
    iso(c->since, when, sizeof(when));
    if (c->in_step)
        printf("catalogue:   etcd, in step since %s, revision %" PRIu64 ", %" PRIu64
               " records applied\n", when, c->revision, c->records_applied);
    else
        printf("catalogue:   etcd, NOT IN STEP since %s: %s (revision %" PRIu64 ", %" PRIu64
               " records applied)\n", when, c->problem, c->revision, c->records_applied);
}

static void print_text(const Keystore__StatusResponse *st)
{
    char since[32], up[64], when[32];
    uint64_t open = 0;
    size_t i;

    iso(st->start_time, since, sizeof(since));
    duration(st->uptime_seconds, up, sizeof(up));
    printf("server:      %s, %u worker%s\n", st->server_version, st->workers,
           st->workers == 1 ? "" : "s");
    printf("uptime:      %s (since %s)\n", up, since);
    printf("keys:        %" PRIu64 "\n", st->keys);
    for (i = 0; i < st->n_connections; i++)
        open += st->connections[i]->open;
    printf("connections: %" PRIu64 " open (", open);
    for (i = 0; i < st->n_connections; i++)
        printf("%s%s %" PRIu64, i ? ", " : "", st->connections[i]->kind, st->connections[i]->open);
    printf("); accepted since start:");
    for (i = 0; i < st->n_connections; i++)
        printf(" %s %" PRIu64, st->connections[i]->kind, st->connections[i]->accepted);
    printf("\nerrors:      %" PRIu64 " operation%s failed\n", st->errors, st->errors == 1 ? "" : "s");
    iso(st->last_reload_time, when, sizeof(when));
    if (st->last_reload_time == 0)
        printf("last reload: never (%" PRIu64 " accepted, %" PRIu64 " refused)\n", st->reloads,
               st->reloads_refused);
    else
        printf("last reload: %s %s: %s (%" PRIu64 " accepted, %" PRIu64 " refused)\n", when,
               st->last_reload_ok ? "ok" : "REFUSED", st->last_reload_message, st->reloads,
               st->reloads_refused);
    print_catalogue_text(st->catalogue);
    printf("\n%-12s %-20s %-28s %10s\n", "OPERATION", "KEY", "RESULT", "COUNT");
    for (i = 0; i < st->n_operations; i++) {
        const Keystore__OperationCount *o = st->operations[i];

        printf("%-12s %-20s %-28s %10" PRIu64 "\n", o->op, o->key[0] ? o->key : "-", o->result,
               o->count);
    }
    printf("\n%-12s %10s %10s %10s %12s\n", "OPERATION", "COUNT", "P50_US", "P99_US", "MEAN_US");
    for (i = 0; i < st->n_latency; i++) {
        const Keystore__OperationLatency *l = st->latency[i];

        printf("%-12s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %12" PRIu64 "\n", l->op, l->count,
               l->p50_us, l->p99_us, l->count ? l->sum_us / l->count : 0);
    }
}

static void print_json(const Keystore__StatusResponse *st)
{
    char since[32], when[32];
    size_t i, j;

    iso(st->start_time, since, sizeof(since));
    iso(st->last_reload_time, when, sizeof(when));
    printf("{\"server_version\": ");
    ctl_json_string(st->server_version);
    printf(", \"workers\": %u, \"start_time\": %" PRIu64 ", \"start_time_iso\": \"%s\", "
           "\"uptime_seconds\": %" PRIu64 ", \"keys\": %" PRIu64 ", \"connections\": {",
           st->workers, st->start_time, since, st->uptime_seconds, st->keys);
    for (i = 0; i < st->n_connections; i++) {
        printf("%s", i ? ", " : "");
        ctl_json_string(st->connections[i]->kind);
        printf(": {\"open\": %" PRIu64 ", \"accepted\": %" PRIu64 "}", st->connections[i]->open,
               st->connections[i]->accepted);
    }
    printf("}, \"errors\": %" PRIu64 ", \"operations\": [", st->errors);
    for (i = 0; i < st->n_operations; i++) {
        const Keystore__OperationCount *o = st->operations[i];

        printf("%s{\"op\": ", i ? ", " : "");
        ctl_json_string(o->op);
        printf(", \"key\": ");
        ctl_json_string(o->key);
        printf(", \"result\": ");
        ctl_json_string(o->result);
        printf(", \"count\": %" PRIu64 "}", o->count);
    }
    printf("], \"latency\": [");
    for (i = 0; i < st->n_latency; i++) {
        const Keystore__OperationLatency *l = st->latency[i];

        printf("%s{\"op\": ", i ? ", " : "");
        ctl_json_string(l->op);
        printf(", \"count\": %" PRIu64 ", \"sum_us\": %" PRIu64 ", \"p50_us\": %" PRIu64
               ", \"p99_us\": %" PRIu64 ", \"buckets\": [", l->count, l->sum_us, l->p50_us,
               l->p99_us);
        for (j = 0; j < l->n_bucket_le_us && j < l->n_bucket_count; j++)
            printf("%s{\"le_us\": %" PRIu64 ", \"count\": %" PRIu64 "}", j ? ", " : "",
                   l->bucket_le_us[j], l->bucket_count[j]);
        printf("]}");
    }
    printf("], \"reloads\": %" PRIu64 ", \"reloads_refused\": %" PRIu64 ", \"last_reload\": ",
           st->reloads, st->reloads_refused);
    if (st->last_reload_time == 0) {
        printf("null");
    } else {
        printf("{\"time\": %" PRIu64 ", \"time_iso\": \"%s\", \"ok\": %s, \"message\": ",
               st->last_reload_time, when, st->last_reload_ok ? "true" : "false");
        ctl_json_string(st->last_reload_message);
        printf("}");
    }
    printf(", \"catalogue\": ");
    if (st->catalogue == NULL) {
        printf("{\"mode\": \"embedded\"}");
    } else {
        const Keystore__CatalogueStatus *c = st->catalogue;

        iso(c->since, when, sizeof(when));
        printf("{\"mode\": \"etcd\", \"in_step\": %s, \"since\": %" PRIu64 ", \"since_iso\": "
               "\"%s\", \"revision\": %" PRIu64 ", \"records_applied\": %" PRIu64
               ", \"problem\": ", c->in_step ? "true" : "false", c->since, when, c->revision,
               c->records_applied);
        ctl_json_string(c->problem);
        printf("}");
    }
    printf("}\n");
}

void ctl_print_status(const Keystore__StatusResponse *st, int json)
{
    if (json)
        print_json(st);
    else
        print_text(st);
}

/* A label value: backslash, double quote and newline escaped. */
static void label(const char *s)
{
    putchar('"');
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            printf("\\%c", *s);
        else if (*s == '\n')
            printf("\\n");
        else
            putchar(*s);
    }
    putchar('"');
}

static void family(const char *name, const char *type, const char *help)
{
    printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void seconds(uint64_t us)
{
    printf("%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

void ctl_print_metrics_down(void)
{
    family("keystore_up", "gauge", "1 if keystored answered on its admin socket");
    printf("keystore_up 0\n");
}

void ctl_print_metrics(const Keystore__StatusResponse *st)
{
    size_t i, j;

    family("keystore_up", "gauge", "1 if keystored answered on its admin socket");
    printf("keystore_up 1\n");
    family("keystore_start_time_seconds", "gauge", "Start of keystored, Unix time");
    printf("keystore_start_time_seconds %" PRIu64 "\n", st->start_time);
    family("keystore_uptime_seconds", "gauge", "Seconds since keystored started serving");
    printf("keystore_uptime_seconds %" PRIu64 "\n", st->uptime_seconds);
    family("keystore_keys", "gauge", "Keys loaded");
    printf("keystore_keys %" PRIu64 "\n", st->keys);
    family("keystore_connections", "gauge", "Open connections by kind");
    for (i = 0; i < st->n_connections; i++) {
        printf("keystore_connections{kind=");
        label(st->connections[i]->kind);
        printf("} %" PRIu64 "\n", st->connections[i]->open);
    }
    family("keystore_connections_accepted_total", "counter", "Connections accepted by kind");
    for (i = 0; i < st->n_connections; i++) {
        printf("keystore_connections_accepted_total{kind=");
        label(st->connections[i]->kind);
        printf("} %" PRIu64 "\n", st->connections[i]->accepted);
    }
    family("keystore_operations_total", "counter", "Requests by key, operation and result");
    for (i = 0; i < st->n_operations; i++) {
        const Keystore__OperationCount *o = st->operations[i];

        printf("keystore_operations_total{key=");
        label(o->key);
        printf(",op=");
        label(o->op);
        printf(",result=");
        label(o->result);
        printf("} %" PRIu64 "\n", o->count);
    }
    family("keystore_errors_total", "counter", "Requests whose result was not ok");
    printf("keystore_errors_total %" PRIu64 "\n", st->errors);
    family("keystore_operation_latency_seconds", "histogram",
           "Time from a request's arrival to its reply, by operation");
    for (i = 0; i < st->n_latency; i++) {
        const Keystore__OperationLatency *l = st->latency[i];

        for (j = 0; j < l->n_bucket_le_us && j < l->n_bucket_count; j++) {
            printf("keystore_operation_latency_seconds_bucket{op=");
            label(l->op);
            printf(",le=\"");
            seconds(l->bucket_le_us[j]);
            printf("\"} %" PRIu64 "\n", l->bucket_count[j]);
        }
        printf("keystore_operation_latency_seconds_bucket{op=");
        label(l->op);
        printf(",le=\"+Inf\"} %" PRIu64 "\n", l->count);
        printf("keystore_operation_latency_seconds_sum{op=");
        label(l->op);
        printf("} ");
        seconds(l->sum_us);
        printf("\nkeystore_operation_latency_seconds_count{op=");
        label(l->op);
        printf("} %" PRIu64 "\n", l->count);
    }
    family("keystore_reloads_total", "counter", "Reloads by result");
    printf("keystore_reloads_total{result=\"ok\"} %" PRIu64 "\n", st->reloads);
    printf("keystore_reloads_total{result=\"refused\"} %" PRIu64 "\n", st->reloads_refused);
    family("keystore_last_reload_timestamp_seconds", "gauge", "Time of the last reload (0: never)");
    printf("keystore_last_reload_timestamp_seconds %" PRIu64 "\n", st->last_reload_time);
    family("keystore_last_reload_success", "gauge", "1 if the last reload was accepted");
    printf("keystore_last_reload_success %d\n", st->last_reload_time == 0 || st->last_reload_ok);
    if (st->catalogue == NULL)
        return;   /* catalogue = embedded */
    family("keystore_catalogue_in_step", "gauge",
           "1 if etcd was read and is watched (changes of the fleet arrive)");
    printf("keystore_catalogue_in_step %d\n", st->catalogue->in_step ? 1 : 0);
    family("keystore_catalogue_in_step_since_timestamp_seconds", "gauge",
           "Time the catalogue last came into or fell out of step");
    printf("keystore_catalogue_in_step_since_timestamp_seconds %" PRIu64 "\n", st->catalogue->since);
    family("keystore_catalogue_revision", "gauge", "Highest etcd revision read");
    printf("keystore_catalogue_revision %" PRIu64 "\n", st->catalogue->revision);
    family("keystore_catalogue_records_applied_total", "counter",
           "Records from etcd handed to the store since start");
    printf("keystore_catalogue_records_applied_total %" PRIu64 "\n",
           st->catalogue->records_applied);
}
