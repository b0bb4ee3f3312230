package main

import (
	"bufio"
	"os"
	"strconv"
)

var firstNames = []string{"Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo", "Amelia", "Levi"}

const residentsHeader = "Integration ID,Property ID,First Name,Last Name,E-mail,Phone,Phone Type,Date of Birth,Address,Unit,City,State,Zip Code,Country,Rent Period,Rent Due Day,Notes\n"

// writeResidents writes a CSV file of n valid, distinct residents, shaped
// like samples/residents.csv (about 170 bytes a row). prefix keeps the
// residents of two files apart.
func writeResidents(path string, n int, prefix string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteString(residentsHeader); err != nil {
		f.Close()
		return err
	}
	var b []byte
	for i := 1; i <= n; i++ {
		num := strconv.Itoa(i)
		b = b[:0]
		b = append(b, "int_rentmanager_demo,prop_"...)
		b = strconv.AppendInt(b, int64(100+100*(i%3)), 10)
		b = append(b, ',')
		b = append(b, firstNames[i%len(firstNames)]...)
		b = append(b, ",Resident"...)
		b = append(b, prefix...)
		b = append(b, num...)
		b = append(b, ",r"...)
		b = append(b, prefix...)
		b = append(b, num...)
		b = append(b, "@example.com,(555) 866-"...)
		b = append(b, strconv.Itoa(1000+i%9000)...)
		b = append(b, ",mobile,19"...)
		b = strconv.AppendInt(b, int64(50+i%50), 10)
		b = append(b, "-0"...)
		b = strconv.AppendInt(b, int64(1+i%9), 10)
		b = append(b, "-1"...)
		b = strconv.AppendInt(b, int64(i%10), 10)
		b = append(b, ","...)
		b = strconv.AppendInt(b, int64(100+i%900), 10)
		b = append(b, " Maple Ave,Apt "...)
		b = strconv.AppendInt(b, int64(1+i%400), 10)
		b = append(b, ",Austin,TX,78710,US,Monthly,1,\n"...)
		if _, err := w.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
