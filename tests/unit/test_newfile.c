/* SPDX-License-Identifier: MIT */
/* tests/unit/test_newfile.c - new files appear only when committed, never
 * overwrite unless asked, leave nothing when dropped, and the temporaries
 * of dead processes are swept. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "newfile.h"

static char dir[] = "/tmp/vivarium-newfile-XXXXXX";
static char path[256], err[512];

/* Entries in the test folder. */
static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static char content(void)
{
	char c = 0;
	int fd = open(path, O_RDONLY);

	if (fd >= 0 && read(fd, &c, 1) != 1)
		c = 0;
	if (fd >= 0)
		close(fd);
	return c;
}

static int make(char c, bool replace)
{
	struct newfile nf;
	int r = newfile_open(&nf, path, 0600, err, sizeof(err));

	if (r < 0)
		return r;
	CHECK_EQ(write(nf.fd, &c, 1), 1);
	CHECK_EQ(entries(), c == 'x' ? 0 : 1);	/* not there before commit */
	return newfile_commit(&nf, replace, err, sizeof(err));
}

static void test_commit(void)
{
	struct newfile nf;
	struct stat st;

	CHECK_EQ(make('x', false), 0);
	CHECK_EQ(content(), 'x');
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	err[0] = 0;
	CHECK_EQ(make('y', false), -EEXIST);
	CHECK(strstr(err, "already exists") != NULL);
	CHECK_EQ(content(), 'x');
	CHECK_EQ(entries(), 1);
	CHECK_EQ(make('z', true), 0);
	CHECK_EQ(content(), 'z');
	CHECK_EQ(entries(), 1);
	CHECK_EQ(newfile_open(&nf, path, 0600, err, sizeof(err)), 0);
	newfile_abort(&nf);
	newfile_abort(&nf);		/* twice is fine */
	CHECK_EQ(entries(), 1);
	CHECK_EQ(content(), 'z');
}

static void test_sweep(void)
{
	char stale[512], live[512];
	struct newfile nf;
	pid_t dead = fork();

	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	snprintf(stale, sizeof(stale), "%s/.f.vivarium-%d-0", dir, (int)dead);
	snprintf(live, sizeof(live), "%s/.f.vivarium-%d-3", dir, (int)getppid());
	close(open(stale, O_CREAT | O_WRONLY, 0600));
	close(open(live, O_CREAT | O_WRONLY, 0600));
	CHECK_EQ(newfile_open(&nf, path, 0600, err, sizeof(err)), 0);
	newfile_abort(&nf);
	CHECK(access(stale, F_OK) < 0 && errno == ENOENT);
	CHECK_EQ(access(live, F_OK), 0);
	unlink(live);
}

static void test_missing_folder(void)
{
	char p[300];
	struct newfile nf;

	snprintf(p, sizeof(p), "%s/no/f", dir);
	err[0] = 0;
	CHECK_EQ(newfile_open(&nf, p, 0600, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "cannot create") != NULL);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/f", dir);
	RUN_TEST(test_commit);
	RUN_TEST(test_sweep);
	RUN_TEST(test_missing_folder);
	unlink(path);
	rmdir(dir);
	return check_finish();
}
