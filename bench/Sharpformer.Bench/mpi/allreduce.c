/* Reference all-reduce bandwidth measured with the MPI library alone (no .NET), for comparison with
   `Sharpformer.Bench allreduce` (which compiles and runs this file itself). Same message (N floats, MPI_SUM, in place), both the blocking and the nonblocking call, same timing rule (median of R reps after
   one warm-up, each rep between barriers). Prints one JSON line on rank 0.
   Build: mpicc -O2 -o allreduce allreduce.c    Run: mpirun -np 2 ./allreduce [floats] [repeats] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = argc > 1 ? atol(argv[1]) : 25 * 1000 * 1000;   /* 100 MB of floats */
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    float *buf = malloc(n * sizeof(float));
    for (long i = 0; i < n; i++) buf[i] = (float)(rank + 1);
    double *t = malloc(reps * sizeof(double));
    /* blocking MPI_Allreduce, then MPI_Iallreduce + MPI_Wait (the call Sharpformer's trainer makes) */
    for (int nonblocking = 0; nonblocking < 2; nonblocking++)
    {
        for (int r = -1; r < reps; r++)
        {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            if (nonblocking)
            {
                MPI_Request req;
                MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
                MPI_Wait(&req, MPI_STATUS_IGNORE);
            }
            else MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double dt = MPI_Wtime() - t0;
            MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);   /* the slowest rank's time */
            if (r >= 0) t[r] = dt;
        }
        qsort(t, reps, sizeof(double), cmp);
        double s = t[reps / 2], bytes = (double)n * sizeof(float);
        /* bus bandwidth (NCCL convention): a ring all-reduce moves 2(p-1)/p of the buffer through each rank's link. */
        if (rank == 0)
            printf("{\"bench\":\"allreduce_c_reference\",\"call\":\"%s\",\"ranks\":%d,\"bytes\":%.0f,\"median_s\":%.4f,\"algbw_gb_s\":%.3f,\"busbw_gb_s\":%.3f}\n",
                   nonblocking ? "MPI_Iallreduce+MPI_Wait" : "MPI_Allreduce", size, bytes, s, bytes / s / 1e9, bytes / s / 1e9 * 2.0 * (size - 1) / size);
    }
    free(buf); free(t);
    MPI_Finalize();
    return 0;
}
