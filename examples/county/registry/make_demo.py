#!/usr/bin/env python3
"""make_demo.py: writes the demo county's registry, the CSV files
`yizhan registry import` reads (README, "The registry"), next to itself:

  schools.csv      the county's five schools with their enrolment
  people.csv       teachers (a class teacher for every class, a head and a
                   deputy in charge per school) and a few volunteers
  children.csv     four schools' left-behind children, UTF-8, as a county
                   template filled in by hand would be
  children-gbk.csv the fifth school's children, GBK (what Excel saves on a
                   Chinese Windows PC), converted with iconv -f UTF-8 -t GBK
  pairings.csv     proxy parents (结对帮扶): teachers and volunteers paired
                   with a child

The county (青山县), its towns, schools, people and numbers are invented.
Names are common surnames with common given names; phones are 11-digit
mainland mobiles in the 1370000xxxx-1390000xxxx range, which no real
subscriber holds. The output is deterministic: running it again writes the
same bytes (the files are committed; this script documents how they were
made and remakes them after a change).

Usage: python3 make_demo.py [--out DIR]
"""
import argparse
import csv
import io
import os
import random
import subprocess

SEED = 20260902

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁"
SURNAME_WEIGHTS = [1.0 / (1 + i * 0.12) for i in range(len(SURNAMES))]
BOY = ["浩然", "子轩", "宇航", "俊杰", "梓豪", "明轩", "志强", "家乐", "文博", "天佑", "一鸣", "嘉豪",
       "思远", "晨阳", "浩宇", "子涵", "博文", "俊熙", "睿", "磊", "鑫", "杰", "涛", "鹏", "宇", "凯",
       "小龙", "小军", "建华", "佳豪", "泽宇", "皓轩", "雨辰", "铭", "旭东", "海峰"]
GIRL = ["梓涵", "欣怡", "雨桐", "诗琪", "佳怡", "思雨", "可馨", "语嫣", "梦瑶", "雨萱", "婷", "静",
        "悦", "琳", "倩", "颖", "小雪", "小芳", "晓燕", "丽娟", "美玲", "佳琪", "紫萱", "心怡", "嘉欣",
        "雅婷", "一诺", "若曦", "思彤", "艳", "慧敏", "春燕"]
MAN = ["建国", "建军", "国强", "志刚", "海军", "永红", "卫东", "长春", "德明", "光荣", "小平", "红军",
       "伟", "勇", "刚", "军", "斌", "平", "华", "明", "林", "波", "辉", "峰"]
WOMAN = ["丽", "芳", "娟", "敏", "霞", "燕", "红梅", "秀英", "桂花", "春兰", "玉兰", "小琴", "金凤",
         "翠萍", "海燕", "丽萍", "美华", "秀珍", "玉梅", "冬梅"]
ELDER_M = ["德福", "福贵", "根生", "长顺", "金山", "有才", "发财", "老三", "树林", "占元", "忠义", "保国"]
ELDER_F = ["秀兰", "桂英", "凤珍", "玉珍", "翠花", "菊香", "淑芬", "桂兰", "素珍", "腊梅", "春花", "月娥"]
ADULT = MAN + WOMAN

CITIES = ["广东东莞", "广东深圳", "广东广州", "广东佛山", "广东中山", "浙江义乌", "浙江宁波", "浙江温州",
          "福建晋江", "福建厦门", "江苏苏州", "江苏昆山", "上海", "湖南长沙"]
CITY_WEIGHTS = [12, 10, 8, 5, 3, 8, 5, 4, 7, 3, 6, 3, 4, 3]

# (school, town, classes per grade, children listed, enrolment, villages,
#  whether its file is the GBK one)
SCHOOLS = [
    ("石门镇中心小学", "石门镇", 2, 92, 436, ["石门村", "杨柳村", "枫树坪村", "河口村", "大湾村"], False),
    ("龙泉镇中心小学", "龙泉镇", 1, 64, 251, ["龙泉村", "竹园村", "高桥村", "新华村"], False),
    ("白沙乡小学", "白沙乡", 1, 50, 168, ["白沙村", "沙湾村", "黄土岭村", "清水村"], False),
    ("马坪村小学", "马坪乡", 1, 44, 127, ["马坪村", "长岭村", "五里冲村"], False),
    ("柳溪乡中心小学", "柳溪乡", 1, 52, 183, ["柳溪村", "荷塘村", "三溪村", "花桥村"], True),
]
# How a form filled in by hand names a guardian.
SPOKEN = {"祖父母": ["爷爷奶奶", "奶奶", "爷爷", "祖父母"], "外祖父母": ["外公外婆", "外婆", "外祖父母"],
          "其他亲属": ["叔叔", "姑姑", "舅舅", "其他亲属"]}
GRADES = ["一", "二", "三", "四", "五", "六"]

NOTES = ["", "", "", "", "", "", "", "", "", "", "身体健康", "性格内向，需要多关心", "爱好画画",
         "有哮喘，注意天气变化", "成绩进步明显", "与奶奶同住，奶奶腿脚不便", "喜欢看书", "上学路远，需走山路"]

CHILD_HEADER = ["姓名", "性别", "出生日期", "学校", "班级", "村", "外出", "外出时间", "状态", "学习表现",
                "父亲姓名", "父亲电话", "父亲务工地", "母亲姓名", "母亲电话", "母亲务工地",
                "监护人姓名", "监护人关系", "监护人电话", "备注"]


class Demo:
    """The county, drawn from one seeded generator."""

    def __init__(self):
        self.r = random.Random(SEED)
        self.used = set()
        self.next_phone = {"138": 1, "139": 1, "137": 1}

    def phone(self, prefix):
        # Sequential inside the fake range, shuffled a little so numbers do
        # not look like a counter: 1380000xxxx for staff, 1390000xxxx and
        # 1370000xxxx for families.
        while True:
            n = self.next_phone[prefix]
            self.next_phone[prefix] = n + self.r.randrange(1, 40)
            p = "%s0000%04d" % (prefix, n % 10000)
            if p not in self.used:
                self.used.add(p)
                return p

    def surname(self):
        return self.r.choices(SURNAMES, SURNAME_WEIGHTS)[0]

    def name(self, pool, surname=None):
        return (surname or self.surname()) + self.r.choice(pool)


def class_names(per_grade):
    return ["%s年级%d班" % (g, c) for g in GRADES for c in range(1, per_grade + 1)]


def birth_for(d, grade):
    # Children start school in the September after they turn six: a child in
    # grade g in autumn 2026 was born between September (2020 - g) and August
    # (2021 - g). A few are a year older (they started late or repeated).
    y = 2020 - grade - (1 if d.r.random() < 0.08 else 0)
    month = d.r.randrange(9, 21)
    year = y + (1 if month > 12 else 0)
    month = month - 12 if month > 12 else month
    return year, month, d.r.randrange(1, 29)


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)


def make(out):
    d = Demo()
    r = d.r

    # Schools.
    write(os.path.join(out, "schools.csv"),
          [["学校", "乡镇", "在校学生数"]] + [[s[0], s[1], s[4]] for s in SCHOOLS])

    # Teachers: a class teacher (班主任) per class, a head (校长) and a deputy
    # in charge (分管副校长) per school; volunteers from the county's youth
    # league and retired teachers, attached to no school.
    people = [["姓名", "类别", "电话", "学校", "班级", "职务"]]
    staff = {}  # school -> [(name, phone)] who may be paired with a child
    taken = set()

    def person_name(pool):
        while True:
            n = d.name(pool)
            if n not in taken:
                taken.add(n)
                return n

    for school, _, per_grade, *_ in SCHOOLS:
        staff[school] = []
        for role in ("校长", "分管副校长"):
            n, p = person_name(ADULT), d.phone("138")
            people.append([n, "教师", p, school, "", role])
            staff[school].append((n, p))
        for cls in class_names(per_grade):
            n, p = person_name(ADULT), d.phone("138")
            people.append([n, "教师", p, school, cls, "班主任"])
            staff[school].append((n, p))
    volunteers = []
    for _ in range(4):
        n, p = person_name(ADULT), d.phone("138")
        people.append([n, "志愿者", p, "", "", ""])
        volunteers.append((n, p))
    write(os.path.join(out, "people.csv"), people)

    # Children, family by family. About one family in eight has two children
    # at the same school.
    rows = {s[0]: [] for s in SCHOOLS}
    pairings = [["学生姓名", "学校", "出生日期", "结对人", "结对人电话", "开始日期"]]
    seen = set()
    story = [  # the children the walkthrough looks up
        dict(school="石门镇中心小学", name="张小明", gender="男", grade=3, cls="三年级1班",
             birth="2018-03-12", village="杨柳村", away="父母", since="2021-02-01",
             father=("张建军", "广东东莞"), mother=("刘红梅", "广东东莞"),
             guardian=("张德福", "祖父母"), perf="中", notes="和奶奶爷爷同住，周末常和爸爸妈妈视频"),
        dict(school="石门镇中心小学", name="李小红", gender="女", grade=5, cls="五年级2班",
             birth="2015-10-03", village="河口村", away="母亲", since="2022-03-01",
             father=("李国强", ""), mother=("王丽娟", "浙江义乌"),
             guardian=("李国强", "父亲"), perf="好", notes="数学作业需要辅导"),
    ]
    for s in story:
        f = (d.phone("139"), d.phone("139"), d.phone("137"))
        gphone = f[0] if s["guardian"][1] == "父亲" else f[2]
        seen.add((s["school"], s["name"], s["birth"]))
        rows[s["school"]].append([s["name"], s["gender"], s["birth"], s["school"], s["cls"],
                                  s["village"], s["away"], s["since"], "留守", s["perf"],
                                  s["father"][0], f[0], s["father"][1], s["mother"][0], f[1],
                                  s["mother"][1], s["guardian"][0], s["guardian"][1], gphone,
                                  s["notes"]])

    for school, _town, per_grade, n_children, _, villages, gbk in SCHOOLS:
        classes = class_names(per_grade)
        family = None
        while len(rows[school]) < n_children:
            if family is None or r.random() > 0.13:
                sn = d.surname()
                away = r.choices(["父母", "父亲", "母亲"], [70, 22, 8])[0]
                if away == "父母":
                    rel = r.choices(["祖父母", "外祖父母", "其他亲属", "其他"], [66, 22, 8, 4])[0]
                elif away == "父亲":
                    rel = r.choices(["母亲", "祖父母", "外祖父母"], [80, 16, 4])[0]
                else:
                    rel = r.choices(["父亲", "祖父母", "外祖父母"], [70, 25, 5])[0]
                city = r.choices(CITIES, CITY_WEIGHTS)[0]
                father = [d.name(MAN, sn), d.phone("139"), ""]
                mother = [d.name(WOMAN), d.phone("139") if r.random() < 0.9 else "", ""]
                if away in ("父母", "父亲"):
                    father[2] = city
                if away in ("父母", "母亲"):
                    # Most couples work in the same city.
                    mother[2] = city if r.random() < 0.8 else r.choices(CITIES, CITY_WEIGHTS)[0]
                if rel == "父亲":
                    guardian = (father[0], father[1])
                elif rel == "母亲":
                    mother[1] = mother[1] or d.phone("139")
                    guardian = (mother[0], mother[1])
                elif rel == "祖父母":
                    guardian = (d.name(ELDER_M + ELDER_F, sn), d.phone("137"))
                elif rel == "外祖父母":
                    guardian = (d.name(ELDER_M + ELDER_F, mother[0][0]), d.phone("137"))
                elif rel == "其他亲属":
                    guardian = (d.name(ADULT, sn), d.phone("137"))
                else:
                    guardian = (d.name(ADULT), d.phone("137"))
                family = dict(sn=sn, away=away, rel=rel, father=father, mother=mother,
                              guardian=guardian, village=r.choice(villages),
                              since=(r.randrange(2016, 2026), r.randrange(1, 13)), grades=set())
            grade = r.randrange(1, 7)
            if grade in family["grades"]:
                family = None
                continue
            boy = r.random() < 0.52
            name = d.name(BOY if boy else GIRL, family["sn"])
            y, m, dd = birth_for(d, grade)
            birth = "%d-%02d-%02d" % (y, m, dd)
            if (school, name, birth) in seen or any(row[0] == name for row in rows[school]):
                family = None
                continue
            seen.add((school, name, birth))
            family["grades"].add(grade)
            cls = classes[(grade - 1) * per_grade + r.randrange(per_grade)]
            status = r.choices(["留守", "返乡"], [97, 3])[0]
            perf = r.choices(["好", "中", "差", "较好", "中等", "较差", ""], [18, 28, 10, 10, 18, 8, 4])[0]
            sy, sm = family["since"]
            if (sy, sm) <= (y + 1, m):
                # The parents left after the child was born: at the earliest
                # when it was about one (mothers often stay the first year).
                sy, sm = min(y + 1 + r.randrange(0, 3), 2026), r.randrange(1, 9)
            since = "%d-%02d-01" % (sy, sm)
            fa, mo, gu = family["father"], family["mother"], family["guardian"]
            if gbk:
                # The GBK school's form was filled in with Excel: dates as
                # Excel writes them, months as people write them.
                birth_cell = "%d/%d/%d" % (y, m, dd)
                since_cell = "%d年%d月" % (sy, sm)
                # ... and the words its teachers use (all accepted, README).
                rel_cell = r.choice(SPOKEN.get(family["rel"], [family["rel"]]))
                perf_cell = {"好": "较好", "中": "一般", "差": "较差"}.get(perf, perf)
            else:
                birth_cell, since_cell, rel_cell, perf_cell = birth, since, family["rel"], perf
            rows[school].append([name, "男" if boy else "女", birth_cell, school, cls, family["village"],
                                 family["away"], since_cell, status, perf_cell, fa[0], fa[1], fa[2],
                                 mo[0], mo[1], mo[2], gu[0], rel_cell, gu[1], r.choice(NOTES)])
            if status == "留守" and r.random() < 0.22:
                helper = r.choice(staff[school] + volunteers)
                pairings.append([name, school, birth, helper[0], helper[1], "2026-09-01"])

    def by_class(row):
        school = next(s for s in SCHOOLS if s[0] == row[3])
        return (class_names(school[2]).index(row[4]), row[0])

    utf8 = [CHILD_HEADER]
    for s in SCHOOLS:
        if not s[6]:
            utf8 += sorted(rows[s[0]], key=by_class)
    write(os.path.join(out, "children.csv"), utf8)

    # The fifth school's file: the same columns, written as UTF-8 and
    # converted by iconv, as a county officer would convert it.
    gbk_school = next(s for s in SCHOOLS if s[6])[0]
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows([CHILD_HEADER] + sorted(rows[gbk_school], key=by_class))
    data = subprocess.run(["iconv", "-f", "UTF-8", "-t", "GBK"], input=buf.getvalue().encode("utf-8"),
                          stdout=subprocess.PIPE, check=True).stdout
    with open(os.path.join(out, "children-gbk.csv"), "wb") as f:
        f.write(data)

    write(os.path.join(out, "pairings.csv"), pairings)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    make(a.out)


if __name__ == "__main__":
    main()
