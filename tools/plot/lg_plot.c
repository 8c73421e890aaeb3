/*
 * lg_plot.c — the lg-plot tool: learning curves from a fit history CSV.
 *
 *     lg-plot history.csv curves.svg     (or curves.png)
 *
 * Exit status 0 on success, 1 when the plot fails (the message on stderr),
 * 2 for a wrong command line.
 */
#include <stdio.h>
#include <string.h>

#include "plot/plot.h"

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: lg-plot HISTORY.csv OUT.svg|OUT.png\n"
               "Plots a fit history (lg_fit's history_csv, Keras's CSVLogger): loss and val_loss,\n"
               "and the metric with its validation, per epoch.\n");
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: lg-plot HISTORY.csv OUT.svg|OUT.png\n");
        return 2;
    }
    if (lg_plot_history_csv(argv[1], argv[2]) != LG_OK) {
        fprintf(stderr, "lg-plot: %s\n", lg_last_error());
        return 1;
    }
    return 0;
}
