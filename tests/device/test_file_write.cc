// write_file_atomically, the writer of every file simaccel writes, and the stats file through
// it: a symbolic link planted at the path is replaced, its target left untouched; with
// stats-interval, the file rewritten by the completion thread while the device runs.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "device_test_util.h"
#include "simaccel/device.h"
#include "simaccel/file_write.h"

namespace simaccel::test {
namespace {

class FileWrite : public ::testing::Test {
  protected:
    void SetUp() override {
        const char *tmp = std::getenv("TMPDIR");
        dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/simaccel-file-write.XXXXXX";
        ASSERT_NE(mkdtemp(dir_.data()), nullptr);
    }
    void TearDown() override {
        for (const std::string &name : entries())
            unlink((dir_ + "/" + name).c_str());
        rmdir(dir_.c_str());
    }
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        if (DIR *d = opendir(dir_.c_str())) {
            while (dirent *e = readdir(d))
                if (std::string n = e->d_name; n != "." && n != "..")
                    names.push_back(n);
            closedir(d);
        }
        return names;
    }
    static std::string read(const std::string &path) {
        std::ifstream in(path);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }
    static bool is_regular_file(const std::string &path) {
        struct stat st;
        return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    }

    std::string dir_;
};

TEST_F(FileWrite, CreatesAndReplacesAFileLeavingNothingElse) {
    const std::string path = dir_ + "/out.json";
    std::string err;
    ASSERT_TRUE(write_file_atomically(path, "first\n", &err)) << err;
    EXPECT_EQ(read(path), "first\n");
    ASSERT_TRUE(write_file_atomically(path, "second\n", &err)) << err;
    EXPECT_EQ(read(path), "second\n");
    EXPECT_EQ(entries(), std::vector<std::string>{"out.json"}) << "a temporary file was left";
}

TEST_F(FileWrite, ModeIsTheUmasks) {
    const mode_t old = umask(027);
    const std::string path = dir_ + "/mode.json";
    std::string err;
    const bool ok = write_file_atomically(path, "x", &err);
    umask(old);
    ASSERT_TRUE(ok) << err;
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(FileWrite, ASymlinkAtThePathIsReplacedNotFollowed) {
    const std::string victim = dir_ + "/victim";
    const std::string link = dir_ + "/stats.json";
    std::ofstream(victim) << "precious\n";
    ASSERT_EQ(symlink(victim.c_str(), link.c_str()), 0);
    std::string err;
    ASSERT_TRUE(write_file_atomically(link, "{}\n", &err)) << err;
    EXPECT_EQ(read(victim), "precious\n") << "the link's target was written through";
    EXPECT_TRUE(is_regular_file(link)) << "the path is not a regular file";
    EXPECT_EQ(read(link), "{}\n");
}

TEST_F(FileWrite, AFailureNamesThePathAndLeavesNothing) {
    const std::string path = dir_ + "/no-such-dir/out.json";
    std::string err;
    EXPECT_FALSE(write_file_atomically(path, "x", &err));
    EXPECT_NE(err.find(path), std::string::npos) << err;
    EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
    // A directory or a FIFO at the path is not replaced.
    const std::string sub = dir_ + "/a-dir";
    ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
    EXPECT_FALSE(write_file_atomically(sub, "x", &err));
    EXPECT_NE(err.find("not replaced: a directory"), std::string::npos) << err;
    const std::string fifo = dir_ + "/a-fifo";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_FALSE(write_file_atomically(fifo, "x", &err));
    EXPECT_NE(err.find("not replaced: not a regular file"), std::string::npos) << err;
    struct stat st;
    ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
    // An unwritable directory: the temporary file cannot be made.
    if (geteuid() != 0) {
        ASSERT_EQ(chmod(sub.c_str(), 0500), 0);
        EXPECT_FALSE(write_file_atomically(sub + "/out.json", "x", &err));
        EXPECT_NE(err.find("cannot create a temporary file"), std::string::npos) << err;
        chmod(sub.c_str(), 0700);
    }
    rmdir(sub.c_str());
    unlink(fifo.c_str());
    EXPECT_EQ(entries(), std::vector<std::string>{}) << "a temporary file was left";
}

// The stats file, as the exit hook writes it (`SIMACCEL_OPTS=stats-file=/tmp/link`, a link
// planted by another user, used to make root overwrite its target).
TEST_F(FileWrite, TheStatsFileReplacesASymlinkAndLeavesItsTarget) {
    const std::string victim = dir_ + "/victim";
    const std::string link = dir_ + "/stats-" + std::to_string(getpid()) + ".json";
    std::ofstream(victim) << "precious\n";
    ASSERT_EQ(symlink(victim.c_str(), link.c_str()), 0);
    Device dev;
    std::string err;
    ASSERT_TRUE(dev.update_config(
        [&](Config &cfg, std::string *e) {
            return config_set(cfg, "stats-file", dir_ + "/stats-%p.json", e);
        },
        &err))
        << err;
    dev.write_stats_file();
    EXPECT_EQ(read(victim), "precious\n") << "the stats file was written through the link";
    ASSERT_TRUE(is_regular_file(link));
    const std::string json = read(link);
    EXPECT_EQ(json.rfind("{\"ops\":", 0), 0u) << json;
    EXPECT_EQ(json.back(), '\n');
}

// The "submitted" counter of the null class in a stats file's text; -1 if there is none yet.
long long submitted_of(const std::string &json) {
    const std::string key = "\"null\":{\"submitted\":";
    const auto at = json.find(key);
    return at == std::string::npos ? -1 : std::atoll(json.c_str() + at + key.size());
}

// Submits `n` requests and waits for each.
void run_requests(Device &dev, int n) {
    for (int i = 0; i < n; ++i) {
        TestRequest r;
        ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
        ASSERT_TRUE(r.wait());
    }
}

// Polls `path` until its counter exceeds `above` (bounded: not a timing assertion, the
// interval is 10 ms and the bound 10 s); returns the counter seen last.
long long wait_for_submitted_above(const std::string &path, long long above) {
    long long seen = -1;
    for (int i = 0; i < 1000 && seen <= above; ++i) {
        std::ifstream in(path);
        std::ostringstream s;
        s << in.rdbuf();
        // Atomic replacement: the file is always a whole document, never a torn one.
        const std::string text = s.str();
        if (!text.empty()) {
            EXPECT_EQ(text.rfind("{\"ops\":", 0), 0u) << text;
            EXPECT_EQ(text.back(), '\n') << text;
        }
        seen = submitted_of(text);
        if (seen <= above)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return seen;
}

TEST_F(FileWrite, StatsIntervalRewritesTheFileWithGrowingCountersWhileRunning) {
    const std::string path = dir_ + "/live.json";
    Device dev;
    configure(dev, "workers=1 stats-interval=10ms stats-file=" + path);
    run_requests(dev, 3);
    // No exit hook in this test: only the completion thread writes the file.
    // The file may be written between two of them: wait for the one that has all three.
    EXPECT_EQ(wait_for_submitted_above(path, 2), 3);
    run_requests(dev, 5);
    EXPECT_EQ(wait_for_submitted_above(path, 7), 8);
    dev.shutdown(); // joins the writer: no deadlock with the device's lock
    const std::string last = read(path);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(read(path), last) << "written after shutdown";
    EXPECT_EQ(entries(), std::vector<std::string>{"live.json"}) << "a temporary file was left";
}

TEST_F(FileWrite, StatsIntervalSetOnARunningDeviceTakesEffectAndZeroStopsIt) {
    const std::string path = dir_ + "/live.json";
    Device dev;
    configure(dev, "workers=1 stats-file=" + path);
    run_requests(dev, 2);
    EXPECT_FALSE(is_regular_file(path)) << "written without stats-interval";
    // Not structural: the running device (an idle completion thread) picks it up.
    std::string err;
    ASSERT_TRUE(dev.update_config(
        [](Config &c, std::string *e) { return config_set(c, "stats-interval", "10ms", e); }, &err))
        << err;
    EXPECT_TRUE(dev.running());
    EXPECT_GE(wait_for_submitted_above(path, 1), 2);
    ASSERT_TRUE(dev.update_config(
        [](Config &c, std::string *e) { return config_set(c, "stats-interval", "0", e); }, &err))
        << err;
    run_requests(dev, 1);
    const std::string after_off = read(path);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(read(path), after_off) << "still rewritten with stats-interval=0";
    dev.shutdown();
}

// Shutdown and structural reconfiguration hold the device's lock while they join the completion
// thread, which takes that lock to copy the configuration: it must skip, not wait.
TEST_F(FileWrite, StatsIntervalNeverDeadlocksShutdownOrRestart) {
    const std::string path = dir_ + "/live.json";
    Device dev;
    for (int round = 0; round < 20; ++round) {
        configure(dev, "stats-interval=1us stats-file=" + path +
                           " workers=" + std::to_string(1 + round % 2));
        run_requests(dev, 2);
        if (round % 2)
            dev.shutdown();
    }
    dev.shutdown();
    EXPECT_GE(submitted_of(read(path)), 1);
    EXPECT_EQ(entries(), std::vector<std::string>{"live.json"}) << "a temporary file was left";
}

// Reset and fork do not stop the writer: after DEVICE_RESET the same thread goes on; a forked
// child's new device writes its own file (`%p`), with the child's counters (zeroed at the
// fork), and the parent's file goes on growing.
TEST_F(FileWrite, StatsIntervalGoesOnAcrossResetAndForkWithAFilePerProcess) {
    Device &dev = Device::get(); // the one with the fork handlers
    configure(dev,
              "workers=1 reset-downtime=1ms stats-interval=5ms stats-file=" + dir_ + "/s-%p.json");
    const std::string mine = dir_ + "/s-" + std::to_string(getpid()) + ".json";
    run_requests(dev, 2);
    EXPECT_EQ(wait_for_submitted_above(mine, 1), 2);
    dev.reset();
    while (dev.is_down())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    run_requests(dev, 1);
    EXPECT_EQ(wait_for_submitted_above(mine, 2), 3) << "not rewritten after a reset";

    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // No gtest assertions in the child: its exit status says what went wrong.
        for (int i = 0; i < 2; ++i) {
            TestRequest r;
            if (dev.try_submit(&r) != Submit::kAccepted || !r.wait())
                _exit(2);
        }
        const std::string own = dir_ + "/s-" + std::to_string(getpid()) + ".json";
        for (int i = 0; i < 1000; ++i) {
            if (submitted_of(read(own)) == 2)
                _exit(0);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        _exit(3);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    // 2: a request failed in the child; 3: the child's file never showed its 2 requests.
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    EXPECT_EQ(submitted_of(read(dir_ + "/s-" + std::to_string(pid) + ".json")), 2);
    run_requests(dev, 1);
    EXPECT_EQ(wait_for_submitted_above(mine, 3), 4) << "the parent's file stopped after the fork";
    dev.shutdown();
    configure(dev, "");
}

} // namespace
} // namespace simaccel::test
