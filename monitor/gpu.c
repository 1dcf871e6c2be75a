/* gpu.c: the GPU probe: nvidia-smi's two CSV queries, run here (fork/exec) or on the target
 * (SSH), parsed into {"gpus":[...]}. */
#include "monitor/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_GPU "--query-gpu=index,uuid,name,temperature.gpu,utilization.gpu,memory.used," \
                  "memory.total,power.draw"
#define QUERY_APPS "--query-compute-apps=gpu_uuid,pid,process_name,used_memory"
#define FORMAT "--format=csv,noheader,nounits"

/* Run nvidia-smi with one query, here or on the target. 0, 1 when there is no nvidia-smi, or
 * -errno; the reason is in err unless 0. */
static int run_query(const struct mon_src *src, const char *query, char **out, size_t *len,
                     int *status, char *err, size_t errlen)
{
    const char *argv[] = { "nvidia-smi", query, FORMAT, NULL };
    char cmd[256];
    int rc;

    if (src->remote) {
        snprintf(cmd, sizeof(cmd), "nvidia-smi %s %s", query, FORMAT);
        rc = mon_ssh_run(src, cmd, MON_COMMAND_MS, MON_OUTPUT_MAX, out, len, status, err,
                         errlen);
        if (rc == 0 && *status == 127)
            rc = 1;             /* the remote shell's "command not found" */
    } else {
        rc = mon_exec(argv, MON_COMMAND_MS, MON_OUTPUT_MAX, out, len, status);
        if (rc == -ENOENT)
            rc = 1;
        else if (rc < 0)
            snprintf(err, errlen, "nvidia-smi: %s",
                     rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
    }
    if (rc == 1) {
        free(*out);
        *out = NULL;
        snprintf(err, errlen, "nvidia-smi not found");
    }
    return rc;
}

/* {"gpus":[...]} from nvidia-smi here or over SSH, or NULL with the reason in err ("nvidia-smi
 * not found"). A failing process query leaves "processes" null, nothing more. */
json_t *mon_probe_gpu(const struct mon_src *src, json_t **state, char *err, size_t errlen)
{
    char *gout = NULL, *aout = NULL, ignored[256];
    size_t glen = 0, alen = 0;
    int gst = -1, ast = -1;
    json_t *gpus = NULL, *metrics = NULL;
    bool apps_ok;

    (void)state;
    if (run_query(src, QUERY_GPU, &gout, &glen, &gst, err, errlen) != 0)
        goto out;
    /* a status of -1 is unknown (reaped elsewhere): the output decides */
    apps_ok = run_query(src, QUERY_APPS, &aout, &alen, &ast, ignored, sizeof(ignored)) == 0 &&
              (ast == 0 || ast == -1);
    gpus = mon_nvsmi_parse(gout, glen, apps_ok ? aout : NULL, alen);
    if (!gpus) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (gst != 0 && gst != -1 && json_array_size(gpus) == 0) {
        char line[160] = "";
        const char *p = gout;

        mon_next_line(&p, gout + glen, line, sizeof(line));
        snprintf(err, errlen, "nvidia-smi failed (exit %d)%s%s", gst, *line ? ": " : "", line);
        goto out;
    }
    metrics = json_pack("{s:O}", "gpus", gpus);
out:
    json_decref(gpus);
    free(gout);
    free(aout);
    return metrics;
}
